#include "auth/jwt.h"

#include <gtest/gtest.h>

#include <limits>

namespace portico::auth {
namespace {

TEST(Base64Url, DecodesWithAndWithoutPadding) {
  std::string out;
  EXPECT_TRUE(base64UrlDecode("eyJhbGciOiJSUzI1NiJ9", out));
  EXPECT_EQ(out, R"({"alg":"RS256"})");
  EXPECT_TRUE(base64UrlDecode("_-8", out));
  EXPECT_EQ(out, "\xff\xef");
  EXPECT_FALSE(base64UrlDecode("a+b/", out));  // the standard alphabet is not base64url
  EXPECT_FALSE(base64UrlDecode("a", out));
}

TEST(ParseJwt, SplitsAndRefusesMalformedTokens) {
  // {"alg":"ES256","kid":"k"} . {"sub":"x"} . "sig"
  auto p = parseJwt("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->alg, "ES256");
  EXPECT_EQ(p->kid, "k");
  EXPECT_EQ(p->claims["sub"], "x");
  EXPECT_EQ(p->signature, "sig");
  EXPECT_EQ(p->signing_input, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0");
  EXPECT_FALSE(parseJwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0."));  // no signature
  EXPECT_FALSE(parseJwt("a.b"));
  EXPECT_FALSE(parseJwt("a.b.c.d"));
  EXPECT_FALSE(parseJwt("bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln"));  // header is not JSON
  // {"alg":"RS256","crit":["x"]}: unknown critical extensions are refused.
  EXPECT_FALSE(parseJwt("eyJhbGciOiJSUzI1NiIsImNyaXQiOlsieCJdfQ.eyJzdWIiOiJ4In0.c2ln"));
}

TEST(CheckClaims, TimesIssuerAudienceAndRequiredValues) {
  ClaimRules rules;
  rules.issuer = "https://idp";
  rules.audiences = {"api"};
  rules.leeway = std::chrono::seconds(10);
  rules.required = {{"scope", {"orders.read"}}};
  const std::int64_t now = 1'000'000;
  nlohmann::json good = {{"iss", "https://idp"}, {"aud", {"x", "api"}}, {"exp", now + 60},
                         {"nbf", now - 5},       {"iat", now},          {"scope", "a orders.read"}};
  EXPECT_EQ(checkClaims(good, rules, now), "");
  auto with = [&](const char* k, nlohmann::json v) {
    auto c = good;
    c[k] = v;
    return checkClaims(c, rules, now);
  };
  EXPECT_EQ(with("exp", now - 5), "");  // within the leeway
  EXPECT_EQ(with("exp", now - 11), "expired");
  EXPECT_EQ(with("exp", "soon"), "exp is not a number");
  EXPECT_EQ(with("nbf", now + 30), "not yet valid");
  EXPECT_EQ(with("iat", now + 30), "issued in the future");
  EXPECT_EQ(with("iss", "https://other"), "wrong issuer");
  EXPECT_EQ(with("aud", "other"), "wrong audience");
  EXPECT_EQ(with("scope", "orders.write"), "claim scope lacks a required value");
  EXPECT_EQ(with("scope", nlohmann::json::array({"orders.read"})), "");
  auto no_exp = good;
  no_exp.erase("exp");
  EXPECT_EQ(checkClaims(no_exp, rules, now), "no exp");
  rules.require_exp = false;
  EXPECT_EQ(checkClaims(no_exp, rules, now), "");
}

// NumericDates an int64 cannot hold are clamped (far future, far past), never converted with
// undefined behaviour, and no comparison with one overflows.
TEST(CheckClaims, NumericDatesBeyondAnInt64AreClamped) {
  constexpr std::int64_t kLimit = std::int64_t{1} << 62;
  const auto date = [](nlohmann::json v) { return numericDate({{"exp", v}}, "exp"); };
  EXPECT_EQ(date(1e300), kLimit);
  EXPECT_EQ(date(-1e300), -kLimit);
  EXPECT_EQ(date(std::numeric_limits<std::uint64_t>::max()), kLimit);
  EXPECT_EQ(date(std::numeric_limits<std::int64_t>::max()), kLimit);
  EXPECT_EQ(date(std::numeric_limits<std::int64_t>::min()), -kLimit);
  EXPECT_EQ(date(1700000000.9), 1700000000);
  EXPECT_EQ(date(42), 42);
  EXPECT_EQ(date("42"), std::nullopt);
  EXPECT_EQ(numericDate({{"iat", 1}}, "exp"), std::nullopt);

  ClaimRules rules;
  rules.leeway = std::chrono::seconds(60);
  const std::int64_t now = 1'700'000'000;
  EXPECT_EQ(checkClaims({{"exp", std::numeric_limits<std::int64_t>::max()}}, rules, now), "");
  EXPECT_EQ(checkClaims({{"exp", 1e300}}, rules, now), "");
  EXPECT_EQ(checkClaims({{"exp", -1e300}}, rules, now), "expired");
  EXPECT_EQ(checkClaims({{"exp", now + 60}, {"nbf", std::numeric_limits<std::uint64_t>::max()}},
                        rules, now),
            "not yet valid");
  EXPECT_EQ(checkClaims({{"exp", now + 60}, {"iat", 1e300}}, rules, now), "issued in the future");
}

TEST(Jwk, RefusesWeakOrUnknownKeysAndNeverMixesAlgorithms) {
  std::string error;
  EXPECT_FALSE(Jwk::fromJson({{"kty", "oct"}, {"k", "c2hvcnQ"}}, error));              // < 256 bits
  EXPECT_FALSE(Jwk::fromJson({{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}}, error));  // tiny
  EXPECT_FALSE(Jwk::fromJson({{"kty", "XYZ"}}, error));
  EXPECT_FALSE(Jwk::fromJson({{"kty", "RSA"}, {"use", "enc"}}, error));
  auto secret = Jwk::fromSecret(std::string(32, 'k'));
  EXPECT_FALSE(secret->verify("RS256", "a.b", "sig"));  // an HMAC key is never an RSA key
  EXPECT_FALSE(secret->verify("none", "a.b", ""));
  EXPECT_FALSE(secret->verify("HS256", "a.b", "wrong"));
}

}  // namespace
}  // namespace portico::auth
