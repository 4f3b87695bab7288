"""Dynamic codes match RFC 6238 exactly and only within their window; QR tokens verify only as signed,
unexpired and unaltered; every refusal is the same error, naming no part."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupons.domain.errors import DomainError, Kind
from coupons.domain.ids import CROCKFORD
from coupons.domain.verification import (
    MAX_QR_TOKEN_CHARS,
    QR_TOKEN_SECONDS,
    QrClaims,
    VerificationFailed,
    coupon_totp_secret,
    hotp,
    match_totp,
    new_nonce,
    otpauth_uri,
    sign_qr_token,
    totp,
    verify_qr_token,
)

# RFC 6238 Appendix B: the seed of each mode is "1234567890" repeated to the hash's output length.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [
    (59, {"sha1": "94287082", "sha256": "46119246", "sha512": "90693936"}),
    (1111111109, {"sha1": "07081804", "sha256": "68084774", "sha512": "25091201"}),
    (1111111111, {"sha1": "14050471", "sha256": "67062674", "sha512": "99943326"}),
    (1234567890, {"sha1": "89005924", "sha256": "91819424", "sha512": "93441116"}),
    (2000000000, {"sha1": "69279037", "sha256": "90698825", "sha512": "38618901"}),
    (20000000000, {"sha1": "65353130", "sha256": "77737706", "sha512": "47863826"}),
]
# RFC 4226 Appendix D: HOTP of the SHA-1 seed for counters 0..9.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

KEY = b"k" * 64
OTHER_KEY = b"o" * 64
NOW = 1_750_000_000
CODE = "TAG0ABCDEFGHJKMNPQRSTV"


class Clock:
    """A clock the test moves: what `now` the till's request would carry."""

    def __init__(self, now: int):
        self.now = now

    def advance(self, seconds: int) -> int:
        self.now += seconds
        return self.now


@pytest.mark.parametrize("digest", sorted(SEEDS))
@pytest.mark.parametrize(("for_time", "expected"), RFC6238, ids=[str(t) for t, _ in RFC6238])
def test_totp_gives_the_rfc_6238_appendix_b_values(for_time, expected, digest):
    assert totp(SEEDS[digest], for_time, digits=8, digest=digest) == expected[digest]


def test_hotp_gives_the_rfc_4226_appendix_d_values():
    assert [hotp(SEEDS["sha1"], counter) for counter in range(10)] == RFC4226


def test_a_code_is_six_digits_by_default_the_last_six_of_the_eight_digit_code():
    assert totp(SEEDS["sha1"], 59) == "287082"
    assert totp(SEEDS["sha1"], 1111111109) == "081804"  # leading zero kept


def test_unsupported_parameters_are_programming_errors():
    with pytest.raises(ValueError):
        totp(SEEDS["sha1"], 59, digest="md5")
    with pytest.raises(ValueError):
        totp(SEEDS["sha1"], 59, digits=5)
    with pytest.raises(ValueError):
        totp(SEEDS["sha1"], -1)
    with pytest.raises(ValueError):
        totp(SEEDS["sha1"], 59, step=0)


def test_a_code_matches_its_own_step_and_one_step_either_side():
    secret = coupon_totp_secret(KEY, CODE)
    clock = Clock(NOW - NOW % 30 + 10)  # 10 s into a step
    shown = totp(secret, clock.now)
    step = clock.now // 30
    # Typed in the same step, in the next one (late), or read off a phone one step ahead (early).
    assert match_totp(secret, shown, clock.now) == step
    assert match_totp(secret, shown, clock.advance(30)) == step
    assert match_totp(secret, shown, clock.advance(-60)) == step


def test_a_code_two_steps_away_is_refused():
    secret = coupon_totp_secret(KEY, CODE)
    clock = Clock(NOW - NOW % 30)
    shown = totp(secret, clock.now)
    assert match_totp(secret, shown, clock.now + 60) is None
    assert match_totp(secret, shown, clock.now - 60) is None
    # A wider window lets it through: the window is the only tolerance.
    assert match_totp(secret, shown, clock.now + 60, window=2) == clock.now // 30


def test_the_matched_step_is_what_makes_a_code_single_use():
    secret = coupon_totp_secret(KEY, CODE)
    clock = Clock(NOW)
    first = match_totp(secret, totp(secret, clock.now), clock.now)
    later = clock.advance(30)
    second = match_totp(secret, totp(secret, later), later)
    assert first is not None and second == first + 1


def test_a_wrong_or_malformed_code_matches_nothing():
    secret = coupon_totp_secret(KEY, CODE)
    shown = totp(secret, NOW)
    wrong = str((int(shown) + 1) % 10**6).zfill(6)
    if wrong in {totp(secret, NOW + d) for d in (-30, 0, 30)}:  # a collision in the window; vanishingly rare
        pytest.skip("the neighbouring code is valid in this window")
    assert match_totp(secret, wrong, NOW) is None
    for malformed in ["", shown[:5], shown + "0", " " + shown[1:], "١٢٣٤٥٦", "12345a", None, int(shown)]:
        assert match_totp(secret, malformed, NOW) is None  # type: ignore[arg-type]


def test_a_code_made_with_another_coupons_secret_does_not_match():
    mine, other = coupon_totp_secret(KEY, CODE), coupon_totp_secret(KEY, CODE[:-1] + "W")
    matched = [match_totp(mine, totp(other, NOW + 30 * i), NOW + 30 * i) for i in range(50)]
    assert sum(m is not None for m in matched) <= 1  # a chance collision of 6 digits at most


def test_derived_secrets_are_20_bytes_and_differ_per_code_and_per_tenant_key():
    secret = coupon_totp_secret(KEY, CODE)
    assert len(secret) == 20
    assert coupon_totp_secret(KEY, CODE) == secret  # derived, so the same every time: nothing stored
    assert coupon_totp_secret(KEY, CODE[:-1] + "W") != secret
    assert coupon_totp_secret(OTHER_KEY, CODE) != secret
    codes = [f"TAG0{i:018d}" for i in range(1000)]
    assert len({coupon_totp_secret(KEY, c) for c in codes}) == 1000


def test_the_derivation_is_domain_separated_from_qr_signatures():
    import hashlib
    import hmac

    assert (
        coupon_totp_secret(KEY, CODE)
        == hmac.new(KEY, b"totp:v1:" + CODE.encode(), hashlib.sha256).digest()[:20]
    )
    assert coupon_totp_secret(KEY, CODE) != hmac.new(KEY, CODE.encode(), hashlib.sha256).digest()[:20]


def test_the_otpauth_uri_parses_back_to_the_secret_and_parameters():
    secret = coupon_totp_secret(KEY, CODE)
    uri = otpauth_uri(secret, account=CODE, issuer="Demo Retail & Co")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    issuer, account = unquote(parts.path.lstrip("/")).split(":")
    assert (issuer, account) == ("Demo Retail & Co", CODE)
    query = {k: v for k, (v,) in parse_qs(parts.query, strict_parsing=True).items()}
    assert query.keys() == {"secret", "issuer", "algorithm", "digits", "period"}
    assert (query["issuer"], query["algorithm"], query["digits"], query["period"]) == (
        "Demo Retail & Co",
        "SHA1",
        "6",
        "30",
    )
    assert "=" not in query["secret"] and "+" not in uri  # base32 unpadded; a space is %20
    assert base64.b32decode(query["secret"] + "=" * (-len(query["secret"]) % 8)) == secret


def test_an_otpauth_label_part_with_the_separator_is_refused():
    with pytest.raises(ValueError):
        otpauth_uri(b"x" * 20, account="a:b", issuer="Demo")
    with pytest.raises(ValueError):
        otpauth_uri(b"x" * 20, account="a", issuer="")


# --- QR tokens -----------------------------------------------------------------------------------


def token_for(*, key=KEY, code=CODE, user_id="user-1", expires_at=NOW + QR_TOKEN_SECONDS, nonce=None) -> str:
    return sign_qr_token(
        key, code=code, user_id=user_id, expires_at=expires_at, nonce=new_nonce() if nonce is None else nonce
    )


def test_a_signed_token_verifies_to_its_claims():
    nonce = new_nonce()
    token = token_for(nonce=nonce)
    assert verify_qr_token(KEY, token, now=NOW) == QrClaims(CODE, "user-1", NOW + QR_TOKEN_SECONDS, nonce)


def test_the_token_is_url_safe_and_its_payload_is_compact_sorted_json_with_a_version():
    token = token_for(nonce="0123456789ABCDEF")
    payload_text, signature_text = token.split(".")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    payload = base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4))
    assert payload == (
        b'{"code":"' + CODE.encode() + b'","expires_at":' + str(NOW + 60).encode()
        + b',"nonce":"0123456789ABCDEF","user_id":"user-1","v":1}'
    )  # fmt: skip
    assert len(base64.urlsafe_b64decode(signature_text + "=")) == 32


def test_changing_any_character_of_payload_or_signature_is_refused():
    token = token_for()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, original in enumerate(token):
        for replacement in {alphabet[(alphabet.find(original) + 1) % 64], "A", "_", ".", "=", "!"} - {
            original
        }:
            with pytest.raises(VerificationFailed):
                verify_qr_token(KEY, token[:i] + replacement + token[i + 1 :], now=NOW)


def test_flipping_any_bit_of_the_payload_or_signature_bytes_is_refused():
    token = token_for()
    payload_text, signature_text = token.split(".")
    raw = [
        bytearray(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (payload_text, signature_text)
    ]
    for part in (0, 1):
        for i in range(len(raw[part])):
            for bit in range(8):
                altered = [bytearray(r) for r in raw]
                altered[part][i] ^= 1 << bit
                forged = ".".join(base64.urlsafe_b64encode(bytes(a)).decode().rstrip("=") for a in altered)
                with pytest.raises(VerificationFailed):
                    verify_qr_token(KEY, forged, now=NOW)


def test_a_token_is_refused_from_its_expiry_second_on():
    clock = Clock(NOW)
    token = token_for(expires_at=NOW + QR_TOKEN_SECONDS)
    assert verify_qr_token(KEY, token, now=clock.advance(QR_TOKEN_SECONDS - 1)).code == CODE
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, token, now=clock.advance(1))
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, token, now=clock.advance(3600))


def test_a_token_signed_with_another_key_is_refused():
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, token_for(key=OTHER_KEY), now=NOW)


def _forge(payload: dict | bytes, key: bytes = KEY) -> str:
    """A token over an arbitrary payload, correctly signed: only the payload's content can be wrong."""
    import hashlib
    import hmac

    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    mac = hmac.new(key, b"qr:v1:" + raw, hashlib.sha256).digest()
    return f"{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


GOOD = {"code": CODE, "user_id": "u", "expires_at": NOW + 60, "nonce": "N", "v": 1}


@pytest.mark.parametrize(
    "payload",
    [
        {**GOOD, "v": 2},
        {**GOOD, "v": "1"},
        {**GOOD, "v": True},
        {k: v for k, v in GOOD.items() if k != "v"},
        {k: v for k, v in GOOD.items() if k != "nonce"},
        {**GOOD, "extra": 1},
        {**GOOD, "expires_at": str(NOW + 60)},
        {**GOOD, "expires_at": float(NOW + 60)},
        {**GOOD, "code": ""},
        {**GOOD, "user_id": 7},
        [GOOD],
        b"not json",
        b"\xff\xfe",
    ],
    ids=lambda p: json.dumps(p, default=repr)[:40],
)
def test_a_well_signed_token_with_a_wrong_version_or_shape_is_refused(payload):
    assert verify_qr_token(KEY, _forge(GOOD), now=NOW).user_id == "u"  # the forger itself is sound
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, _forge(payload), now=NOW)


def test_a_signature_over_the_payload_without_the_domain_prefix_is_refused():
    import hashlib
    import hmac

    raw = json.dumps(GOOD).encode()
    mac = hmac.new(KEY, raw, hashlib.sha256).digest()
    token = f"{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, token, now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "a.b.c",
        "abc.",
        ".abc",
        "a" * 2000 + "." + "b" * 43,
        "é.é",
        None,
        42,
        "a b.c",
        "abcde.abcd",
    ],
    ids=repr,
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, token, now=NOW)  # type: ignore[arg-type]


def test_an_oversize_token_is_refused_even_if_well_signed():
    big = _forge({**GOOD, "user_id": "u" * 900})
    assert len(big) > MAX_QR_TOKEN_CHARS
    with pytest.raises(VerificationFailed):
        verify_qr_token(KEY, big, now=NOW)
    with pytest.raises(ValueError):  # and it is never issued
        token_for(user_id="u" * 900)


def test_every_refusal_is_one_unprocessable_error_that_names_no_part():
    refusals = []
    for token, now in [
        (token_for(), NOW + 3600),  # expired
        (token_for(key=OTHER_KEY), NOW),  # signature
        ("garbage", NOW),  # malformed
        (_forge({**GOOD, "v": 2}), NOW),  # version
    ]:
        with pytest.raises(VerificationFailed) as caught:
            verify_qr_token(KEY, token, now=now)
        refusals.append(caught.value)
    for error in refusals:
        assert isinstance(error, DomainError)
        assert (error.kind, error.code, error.field, error.extra) == (
            Kind.UNPROCESSABLE,  # 422: a 401 is about the API key alone (issue #11 point 4)
            "verification_failed",
            None,
            {},
        )
        assert error.detail == error.title == refusals[0].detail
    lowered = refusals[0].title.lower()
    assert not any(
        word in lowered for word in ("expir", "signature", "version", "malformed", "format", "step")
    )


def test_signing_bad_arguments_is_a_programming_error():
    for kwargs in [{"code": ""}, {"user_id": ""}, {"expires_at": "1"}, {"expires_at": True}, {"nonce": ""}]:
        with pytest.raises(ValueError):
            token_for(**kwargs)
    with pytest.raises(ValueError):
        sign_qr_token(b"", code=CODE, user_id="u", expires_at=NOW, nonce="N")


def test_nonces_are_16_crockford_characters_and_do_not_repeat():
    nonces = {new_nonce() for _ in range(10_000)}
    assert len(nonces) == 10_000
    assert all(len(n) == 16 and set(n) <= set(CROCKFORD) for n in nonces)


@settings(max_examples=300, deadline=None)
@given(
    code=st.text(min_size=1, max_size=64),
    user_id=st.text(min_size=1, max_size=128),
    expires_at=st.integers(min_value=1, max_value=2**53),
    key=st.binary(min_size=1, max_size=128),
)
def test_any_signed_token_verifies_to_exactly_what_was_signed_until_it_expires(
    code, user_id, expires_at, key
):
    nonce = new_nonce()
    token = sign_qr_token(key, code=code, user_id=user_id, expires_at=expires_at, nonce=nonce)
    assert len(token) <= MAX_QR_TOKEN_CHARS
    assert verify_qr_token(key, token, now=expires_at - 1) == QrClaims(code, user_id, expires_at, nonce)
    with pytest.raises(VerificationFailed):
        verify_qr_token(key, token, now=expires_at)
