#pragma once
// Portal passwords: crypt(3) yescrypt hashes (libcrypt), checked in constant time.
#include <string>

namespace portico::portal {

// A fresh yescrypt hash of `password` ("$y$..."); "" if the system cannot make one.
std::string hashPassword(const std::string& password);
// Whether `password` matches `hash` (any crypt(3) hash the system supports).
bool checkPassword(const std::string& password, const std::string& hash);

}  // namespace portico::portal
