#pragma once
// The dashboard's files, compiled into the binary (cmake/embed_assets.cmake): no CDN, nothing
// to install beside it.
#include <span>
#include <string_view>

namespace portico::admin {

struct StaticAsset {
  std::string_view path;  // below /dashboard/, e.g. "app.js"
  std::string_view content_type;
  std::string_view body;
};

std::span<const StaticAsset> dashboardAssets();

}  // namespace portico::admin
