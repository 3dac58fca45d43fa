#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

namespace portico::tls {
namespace {

int exIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool setMac(EVP_MAC_CTX* hctx, const TicketKeys::Key& key) {
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_octet_string(
      OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac.data()), key.hmac.size());
  params[1] =
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("sha256"), 0);
  params[2] = OSSL_PARAM_construct_end();
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

// OpenSSL's ticket callback: 1 = ok, 2 = ok but issue a fresh ticket, 0 = unknown key (full
// handshake), -1 = error.
int onTicket(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
             EVP_MAC_CTX* hctx, int encrypt) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), exIndex()));
  if (!keys) return -1;
  if (encrypt) {
    TicketKeys::Key key = keys->current();
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    return setMac(hctx, key) ? 1 : -1;
  }
  TicketKeys::Key key;
  bool is_current = false;
  if (!keys->find(key_name, key, is_current)) return 0;
  if (!setMac(hctx, key)) return -1;
  if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
  return is_current ? 1 : 2;
}

}  // namespace

TicketKeys::TicketKeys(std::chrono::seconds rotation) : rotation_(rotation) {}

void TicketKeys::attach(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, exIndex(), this);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, onTicket);
}

void TicketKeys::rotateIfDue(std::chrono::steady_clock::time_point now) {
  if (!keys_.empty() && now - keys_.front().created < rotation_) return;
  Key key;
  RAND_bytes(key.name.data(), static_cast<int>(key.name.size()));
  RAND_bytes(key.aes.data(), static_cast<int>(key.aes.size()));
  RAND_bytes(key.hmac.data(), static_cast<int>(key.hmac.size()));
  key.created = now;
  keys_.push_front(key);
  while (keys_.size() > 2) keys_.pop_back();
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mu_);
  rotateIfDue(std::chrono::steady_clock::now());
  return keys_.front();
}

bool TicketKeys::find(const unsigned char* name, Key& out, bool& is_current) {
  std::lock_guard lock(mu_);
  rotateIfDue(std::chrono::steady_clock::now());
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) == 0) {
      out = keys_[i];
      is_current = i == 0;
      return true;
    }
  }
  return false;
}

std::size_t TicketKeys::size() {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace portico::tls
