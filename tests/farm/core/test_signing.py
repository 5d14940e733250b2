"""Signed requests, the pure part: what a signature proves and what it refuses."""

from __future__ import annotations

from farm.core import signing

TOKEN = "the-farm-token-0123456789"
NONCE = "0123456789abcdef0123456789abcdef"
DIGEST = signing.body_digest(b'{"id": "job-1"}')


def signed(token: str = TOKEN, method: str = "POST", path: str = "/v1/jobs", now: float = 1000.0) -> signing.Signature:
    parsed = signing.parse(signing.authorization(token, method, path, DIGEST, now=now, nonce=NONCE))
    assert parsed is not None
    return parsed


def test_a_signature_never_holds_the_token_and_checks_out() -> None:
    header = signing.authorization(TOKEN, "POST", "/v1/jobs", DIGEST, now=1000.0, nonce=NONCE)
    assert TOKEN not in header and header.startswith("LANFarm-HMAC ts=1000, nonce=")
    assert signing.check(TOKEN, signed(), "POST", "/v1/jobs", DIGEST, now=1000.0) == ""


def test_another_token_method_path_or_body_is_refused() -> None:
    sig = signed()
    assert signing.check("another-token", sig, "POST", "/v1/jobs", DIGEST, now=1000.0) == "signature"
    assert signing.check(TOKEN, sig, "DELETE", "/v1/jobs", DIGEST, now=1000.0) == "signature"
    assert signing.check(TOKEN, sig, "POST", "/v1/drain", DIGEST, now=1000.0) == "signature"
    assert signing.check(TOKEN, sig, "POST", "/v1/jobs", signing.EMPTY_DIGEST, now=1000.0) == "signature"
    assert signing.check(TOKEN, signed(token="another-token"), "POST", "/v1/jobs", DIGEST, now=1000.0)


def test_a_signature_outside_the_clock_window_is_refused_saying_why() -> None:
    sig = signed(now=1000.0)
    assert signing.check(TOKEN, sig, "POST", "/v1/jobs", DIGEST, now=1000.0 + signing.WINDOW) == ""
    late = signing.check(TOKEN, sig, "POST", "/v1/jobs", DIGEST, now=1000.0 + signing.WINDOW + 1)
    assert late.startswith("clock") and "1000" in late


def test_only_whole_well_formed_headers_parse() -> None:
    good = signing.authorization(TOKEN, "GET", "/v1/info", signing.EMPTY_DIGEST, now=5.0, nonce=NONCE)
    assert signing.parse(good) is not None
    for junk in (f"Bearer {TOKEN}", "", good + "x", good.replace("nonce=", "nonce=zz"), good + "\n" + good):
        assert signing.parse(junk) is None, junk
