// Helpers for the service tests (server_test.cpp in-process, server_process_test.cpp as a child process):
// an HTTP client over a real loopback socket, test images, the deployment profile and a test policy pack.
#pragma once

#include <httplib.h>
#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace faceguard::test::server {

namespace fs = std::filesystem;
using nlohmann::json;

struct Reply {
  int status = 0;  // 0: no response (connection failed); see error
  std::string body;
  httplib::Headers headers;
  std::string error;

  json j() const {
    json v = json::parse(body, nullptr, false);
    return v.is_discarded() ? json() : v;
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string code() const {
    const json v = j();
    return v.is_object() && v.contains("error") ? v["error"].value("code", std::string()) : std::string();
  }
};

inline std::ostream& operator<<(std::ostream& o, const Reply& r) {
  return o << "HTTP " << r.status << " " << r.body.substr(0, 600) << r.error;
}

// Every request sent to a port (by Api, or counted by hand), so the audit test can count records against it.
inline int count_request(int port, int add = 1) {
  static std::mutex mu;
  static std::map<int, int> sent;
  std::lock_guard lock(mu);
  return sent[port] += add;
}
inline int requests_sent(int port) { return count_request(port, 0); }

// One connection (keep-alive); use one per thread.
class Api {
 public:
  explicit Api(int port) : port_(port), cli_("127.0.0.1", port) {
    cli_.set_connection_timeout(5, 0);
    cli_.set_read_timeout(120, 0);
    cli_.set_write_timeout(30, 0);
    cli_.set_tcp_nodelay(true);  // as a real client would; see http_httplib.cpp
  }

  Reply get(const std::string& path, const std::string& key = {}) { return wrap(cli_.Get(path.c_str(), auth(key))); }
  Reply post(const std::string& path, const std::string& key, const json& body) {
    return raw("POST", path, key, body.dump(), "application/json");
  }
  Reply raw(const std::string& method, const std::string& path, const std::string& key, const std::string& body,
            const std::string& content_type) {
    const auto h = auth(key);
    if (method == "POST") return wrap(cli_.Post(path.c_str(), h, body, content_type.c_str()));
    if (method == "PUT") return wrap(cli_.Put(path.c_str(), h, body, content_type.c_str()));
    if (method == "PATCH") return wrap(cli_.Patch(path.c_str(), h, body, content_type.c_str()));
    if (method == "DELETE") return wrap(cli_.Delete(path.c_str(), h, body, content_type.c_str()));
    return wrap(cli_.Get(path.c_str(), h));
  }
  Reply del(const std::string& path, const std::string& key, const json& body = json::object()) {
    return raw("DELETE", path, key, body.dump(), "application/json");
  }
  // parts: (name, bytes, content type); a "json" part carries the JSON fields.
  Reply multipart(const std::string& path, const std::string& key,
                  const std::vector<std::tuple<std::string, std::string, std::string>>& parts) {
    httplib::MultipartFormDataItems items;
    for (const auto& [name, data, type] : parts)
      items.push_back({name, data, type.rfind("image/", 0) == 0 ? name + ".jpg" : std::string(), type});
    return wrap(cli_.Post(path.c_str(), auth(key), items));
  }

 private:
  static httplib::Headers auth(const std::string& key) {
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return h;
  }
  Reply wrap(httplib::Result r) {
    count_request(port_);
    Reply out;
    if (!r) {
      out.error = " (no response: " + httplib::to_string(r.error()) + ")";
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    return out;
  }
  int port_;
  httplib::Client cli_;
};

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// The image scaled to fit w x h (aspect kept), re-encoded as JPEG: the size a client would send.
inline std::string jpeg_fit(const fs::path& p, int w = 640, int h = 480) {
  cv::Mat img = cv::imread(p.string(), cv::IMREAD_COLOR);
  if (img.empty()) return {};
  const double s = std::min({1.0, double(w) / img.cols, double(h) / img.rows});
  if (s < 1.0) cv::resize(img, img, cv::Size(), s, s, cv::INTER_AREA);
  std::vector<unsigned char> buf;
  cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(buf.begin(), buf.end());
}

inline std::string jpeg_of(const cv::Mat& img) {
  std::vector<unsigned char> buf;
  cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(buf.begin(), buf.end());
}

inline std::string base64(const std::string& bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

inline fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("fg_server_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The deployment: a door in Baltimore (its face-surveillance ban ended 2022-12-31, so captures after it are
// allowed and a 2022 capture at a shop is denied by the real law pack), plus a pack of our own (the user-pack
// mechanism of docs/policy.md) for a review obligation, a retention deadline and a second denial.
inline const char* kTestOrg = "Service Test Org";
inline const char* kMarketingOrg = "Marketing Dept";

inline void write_deployment(const fs::path& dir) {
  write_text(dir / "profile.yaml", R"(format: 1
name: faceguard service test (an office door in Baltimore)
context:
  jurisdiction: {country: US, state: MD, city: baltimore}
policy_dir: packs
)");
  write_text(dir / "packs" / "service-test.yaml", R"(format: 1
id: faceguard-service-test
name: faceguard service test pack
version: "1"
source: "tests/model/server_support.hpp"
applies_to:
  operator.org: Service Test Org
rules:
  - id: svc-test.security-review
    title: A security search match is pending until a second person confirms it
    citation: "Service test policy section 1"
    when:
      operation: identify
      purpose: security
    effect: allow_with_obligations
    obligations:
      human_review: 1
      notice: [not_sole_basis]
  - id: svc-test.security-retention
    title: Faces enrolled for security are kept one day
    citation: "Service test policy section 3"
    when:
      operation: enroll
      purpose: security
    effect: allow_with_obligations
    obligations:
      retention: {days: 1}
)");
  // A denial keyed on the operator's organisation, which always comes from the API key: a rule on a request
  // field would also deny every request that leaves the field out (missing context is a denial).
  write_text(dir / "packs" / "service-test-marketing.yaml", R"(format: 1
id: faceguard-service-test-marketing
name: faceguard service test pack (marketing)
version: "1"
source: "tests/model/server_support.hpp"
applies_to:
  operator.org: Marketing Dept
rules:
  - id: svc-test.no-marketing
    title: The marketing department never uses faces
    citation: "Service test policy section 2"
    when: true
    effect: deny
)");
}

// A context the deployment allows: the door, for access control.
inline json door_context() {
  return {{"location", {{"type", "access_control"}}}, {"purpose", "access_control"}};
}

// deepface's unit-test photos (faces-small): identity -> file names, from identity_groups_derived.txt.
inline fs::path deepface_dir(const fs::path& shared) { return shared / "faces-small/deepface/tests/unit/dataset"; }

}  // namespace faceguard::test::server
