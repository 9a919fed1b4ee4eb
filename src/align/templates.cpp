// Alignment templates: where the five reference points sit in each chip family, with provenance.
// Point order (faceguard/aligner.hpp): image-left eye centre, image-right eye centre, nose tip,
// image-left mouth corner, image-right mouth corner.
#include "faceguard/aligner.hpp"

namespace faceguard {

// dlib's 150 px face chip (get_face_chip_details, size 150, padding 0.25), as measured and recorded in
// shared/docs/MODELS.md ("face_recognition"): eye centres = mean of the six 68-point eye landmarks,
// nose tip = landmark 30, mouth corners = landmarks 48 and 54.
const ChipTemplate& ChipTemplate::dlib150() {
  static const ChipTemplate t{
      "dlib150", 150, {{{47.5f, 45.8f}, {99.4f, 46.5f}, {72.6f, 74.9f}, {50.7f, 102.7f}, {98.3f, 103.3f}}}, {1, 1, 1, 1, 1}};
  return t;
}

// BlazeFace's keypoints are not the 68-point features (its "eye" is the pupil region, its mouth point
// the mouth centre), so it gets its own template: the mean positions of BlazeFace's first four keypoints
// on LFW faces warped by 68-landmark dlib alignment (MODELS.md, 887 images). BlazeFace has no mouth
// corners: slot 3 holds the mouth centre and slot 4 repeats it with weight 0 (five_points() fills both
// slots with the mouth centre), so the fit uses four points, each once.
const ChipTemplate& ChipTemplate::dlib150_blazeface() {
  static const ChipTemplate t{"dlib150_blazeface",
                              150,
                              {{{47.76f, 47.23f}, {101.75f, 47.55f}, {74.67f, 78.26f}, {74.48f, 106.93f}, {74.48f, 106.93f}}},
                              {1, 1, 1, 1, 0}};
  return t;
}

// InsightFace's ArcFace 112 x 112 template (insightface/utils/face_align.py `arcface_dst`), also the
// MobileFaceNet template in MODELS.md.
const ChipTemplate& ChipTemplate::arcface112() {
  static const ChipTemplate t{"arcface112",
                              112,
                              {{{38.2946f, 51.6963f},
                                {73.5318f, 51.5014f},
                                {56.0252f, 71.7366f},
                                {41.5493f, 92.3655f},
                                {70.7299f, 92.2041f}}},
                              {1, 1, 1, 1, 1}};
  return t;
}

// BlazeFace keypoints on the ArcFace 112 chip, measured like dlib150_blazeface (MODELS.md); mouth centre
// in slots 3 and 4, the repeat with weight 0.
const ChipTemplate& ChipTemplate::arcface112_blazeface() {
  static const ChipTemplate t{"arcface112_blazeface",
                              112,
                              {{{38.16f, 53.04f}, {75.32f, 53.25f}, {56.71f, 74.39f}, {56.58f, 94.13f}, {56.58f, 94.13f}}},
                              {1, 1, 1, 1, 0}};
  return t;
}

const ChipTemplate& template_for(const Face& face, bool arcface) {
  const bool blaze = face.scheme == LandmarkScheme::kBlazeFace6;
  if (arcface) return blaze ? ChipTemplate::arcface112_blazeface() : ChipTemplate::arcface112();
  return blaze ? ChipTemplate::dlib150_blazeface() : ChipTemplate::dlib150();
}

}  // namespace faceguard
