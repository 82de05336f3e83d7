// Untrusted text (from a user's file) quoted in an error message, bounded and on one line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dyad::detail {

// At most `max` bytes of untrusted text for an error message: longer text keeps its head and
// tail around an ellipsis and the total length; control bytes are escaped so that the message
// stays on one line. A hostile file cannot make a message of megabytes.
inline std::string excerpt(std::string_view s, std::size_t max = 200) {
  auto escaped = [](std::string_view part) {
    std::string out;
    for (const char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        constexpr char hex[] = "0123456789abcdef";
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
      } else {
        out += c;
      }
    }
    return out;
  };
  if (s.size() <= max) return escaped(s);
  auto continuation = [&](std::size_t i) { return (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80; };
  std::size_t head = max * 3 / 4, tail = s.size() - max / 4;
  for (int k = 0; k < 3 && head > 0 && continuation(head); ++k) --head;  // do not cut a UTF-8 sequence
  for (int k = 0; k < 3 && tail < s.size() && continuation(tail); ++k) ++tail;
  return escaped(s.substr(0, head)) + "...[" + std::to_string(s.size()) + " bytes]..." + escaped(s.substr(tail));
}

}  // namespace dyad::detail
