"""Tenant files: each one valid, and a wrong one refused with the field named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.tenants import Tenant, load_tenant, tenant_names

pytestmark = pytest.mark.xdist_group("infra")

VALID = {
    "name": "demo",
    "display_name": "Demo",
    "default_currency": "CNY",
    "settlement_time_zone": "Asia/Shanghai",
    "settlement_schedule": "cron(0 2 * * ? *)",
    "api_key_cache_seconds": 60,
}


def test_every_tenant_file_loads_under_its_own_name():
    assert {"demo", "acme"} <= set(tenant_names())
    for name in tenant_names():
        assert load_tenant(name).name == name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Demo"),
        ("name", "d"),
        ("name", "a-name-longer-than-twenty-one"),
        ("default_currency", "XYZ"),
        ("settlement_time_zone", "Mars/Olympus"),
        ("settlement_schedule", "0 2 * * *"),
        ("api_key_cache_seconds", -1),
        ("log_level", "LOUD"),
        ("alarm_email", "not-an-address"),
        ("unexpected", "field"),
        ("settlement_t0_cutoff", "24:00"),
        ("holiday_calendar", "nowhere"),
        ("channel_fees", {"simulated": {"bps": 60, "borne_by": "NOBODY"}}),
        ("channel_fees", {"simulated": {"bps": 10_001, "borne_by": "PARTY"}}),
    ],
)
def test_a_wrong_setting_is_refused_naming_the_field(field: str, value):
    with pytest.raises(ValidationError) as refused:
        Tenant.model_validate({**VALID, field: value})
    assert field in str(refused.value)


def test_an_unknown_tenant_names_the_known_ones():
    with pytest.raises(ValueError, match="known: .*demo"):
        load_tenant("nobody")


def test_a_channels_statement_format_is_one_the_parsers_know():
    tenant = Tenant.model_validate({**VALID, "reconciliation_statement_formats": {"wechatpay": "wechatpay-tradebill"}})

    assert tenant.reconciliation_statement_formats == {"wechatpay": "wechatpay-tradebill"}


@pytest.mark.parametrize(
    ("formats", "named"),
    [
        ({"wechatpay": "wechat-bill"}, "unknown statement format 'wechat-bill' for channel 'wechatpay'"),
        ({"WeChat Pay": "wechatpay-tradebill"}, "WeChat Pay"),  # not a channel of statement keys
    ],
)
def test_an_unknown_statement_format_is_refused_at_synth_naming_the_channel_and_the_known_formats(formats, named):
    with pytest.raises(ValidationError) as refused:
        Tenant.model_validate({**VALID, "reconciliation_statement_formats": formats})

    assert "reconciliation_statement_formats" in str(refused.value) and named in str(refused.value)
    if "unknown" in named:
        assert "coupons-bill" in str(refused.value) and "wechatpay-tradebill" in str(refused.value)
