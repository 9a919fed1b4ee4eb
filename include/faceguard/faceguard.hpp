// faceguard.hpp - everything. See each header for its usage example and thread-safety rule.
#pragma once

#include "faceguard/aligner.hpp"
#include "faceguard/compare.hpp"
#include "faceguard/detector.hpp"
#include "faceguard/embedder.hpp"
#include "faceguard/image.hpp"
#include "faceguard/landmarker.hpp"
#include "faceguard/models.hpp"
#include "faceguard/pipeline.hpp"
#include "faceguard/result.hpp"
#include "faceguard/types.hpp"
