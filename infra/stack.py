"""One tenant's stack: composes the capability constructs, exports what operators and the local stack need."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs import stream_consumer
from infra.constructs.anomaly import Anomalies
from infra.constructs.api import Api
from infra.constructs.audit import Audit
from infra.constructs.clearing import Clearing
from infra.constructs.dashboard import Dashboard
from infra.constructs.encryption import DataKey
from infra.constructs.holds import Holds
from infra.constructs.instant import InstantPayouts
from infra.constructs.layers import Layers
from infra.constructs.monitoring import Monitoring
from infra.constructs.reconciliation import Reconciliation
from infra.constructs.secrets import TenantSecret
from infra.constructs.settlement import Settlement
from infra.constructs.storage import Storage
from infra.constructs.tables import Tables
from infra.tenants import Tenant


def stack_name(tenant_name: str) -> str:
    return f"CouponClearing-{tenant_name}"


class CouponClearingStack(Stack):
    def __init__(self, scope: Construct, *, tenant: Tenant, **kwargs: Any) -> None:
        name = stack_name(tenant.name)
        super().__init__(
            scope,
            name,
            stack_name=name,
            description=f"Coupon clearing & settlement: {tenant.display_name}",
            # Stack tags: CloudFormation puts them on every resource at deploy time, so the template
            # itself carries none (moto's CloudFormation fails on a tagged KMS key).
            tags={"tenant": tenant.name, "product": "coupon-clearing"},
            # A tenant's stack holds its money's records: deleting it is never one command away.
            termination_protection=True,
            **kwargs,
        )

        key = DataKey(self, "DataKey", tenant_name=tenant.name).key
        tables = Tables(self, "Tables", key=key)
        storage = Storage(self, "Storage", key=key)
        secret = TenantSecret(self, "TenantSecret", tenant_name=tenant.name, key=key).secret
        layers = Layers(self, "Layers")
        api = Api(self, "Api", tenant=tenant, layers=layers, table=tables.main, key=key, secret=secret)
        clearing = Clearing(self, "Clearing", tenant=tenant, layers=layers, table=tables.main, key=key)
        holds = Holds(self, "Holds", tenant=tenant, layers=layers, table=tables.main, key=key)
        settlement = Settlement(
            self,
            "Settlement",
            tenant=tenant,
            layers=layers,
            table=tables.main,
            statements=storage.statements,
            key=key,
        )
        api.allow_settlement(settlement.state_machine, storage.statements)
        audit = Audit(
            self,
            "Audit",
            tenant=tenant,
            layers=layers,
            table=tables.main,
            key=key,
            access_logs=storage.access_logs,
        )
        audit.allow_api(api.function, api.handler.role)
        reconciliation = Reconciliation(
            self,
            "Reconciliation",
            tenant=tenant,
            layers=layers,
            table=tables.main,
            statements=storage.statements,
            key=key,
            bank=settlement.bank,
        )
        anomalies = Anomalies(self, "Anomaly", tenant=tenant, layers=layers, table=tables.main, key=key)
        instant = None
        if tenant.instant_settlement is not None:
            instant = InstantPayouts(
                self,
                "Instant",
                tenant=tenant,
                layers=layers,
                table=tables.main,
                key=key,
                bank=settlement.bank,
            )
        monitoring = Monitoring(self, "Monitoring", tenant=tenant)
        monitoring.watch_api(api.rest_api)
        monitoring.watch_function("Api", api.function)
        stream_consumer.watch(monitoring, "Clearing", clearing.function, clearing.dead_letters)
        monitoring.watch_settlement(tenant, settlement)
        stream_consumer.watch(monitoring, "Audit", audit.function, audit.dead_letters)
        monitoring.watch_function("AuditSigner", audit.signer.function)
        monitoring.watch_function("HoldExpiry", holds.function)
        monitoring.watch_reconciliation(tenant, reconciliation)
        stream_consumer.watch(monitoring, "Anomaly", anomalies.function, anomalies.dead_letters)
        if instant is not None:
            stream_consumer.watch(monitoring, "Instant", instant.function, instant.dead_letters)
        Dashboard(
            self,
            "Dashboard",
            tenant=tenant,
            rest_api=api.rest_api,
            api_function=api.function,
            clearing_function=clearing.function,
            clearing_dead_letters=clearing.dead_letters,
            settlement=settlement,
            alarm_names=monitoring.alarm_names,
        )

        CfnOutput(self, "TenantName", value=tenant.name)
        CfnOutput(self, "ApiUrl", value=api.url)
        CfnOutput(self, "ApiFunctionName", value=api.function.function_name)
        CfnOutput(self, "ClearingFunctionName", value=clearing.function.function_name)
        CfnOutput(self, "ClearingDlqUrl", value=clearing.dead_letters.queue_url)
        CfnOutput(self, "MainTableName", value=tables.main.table_name)
        CfnOutput(self, "SettlementStateMachineArn", value=settlement.state_machine.state_machine_arn)
        if settlement.bank is not None:
            CfnOutput(self, "SimulatedBankTableName", value=settlement.bank.table_name)
        CfnOutput(self, "StatementsBucketName", value=storage.statements.bucket_name)
        CfnOutput(self, "AnomalyFunctionName", value=anomalies.function.function_name)
        if instant is not None:
            CfnOutput(self, "InstantFunctionName", value=instant.function.function_name)
        CfnOutput(self, "AuditFunctionName", value=audit.function.function_name)
        CfnOutput(self, "AuditSignerFunctionName", value=audit.signer.function.function_name)
        CfnOutput(self, "HoldExpiryFunctionName", value=holds.function.function_name)
        CfnOutput(self, "AuditBucketName", value=audit.bucket.bucket_name)
        CfnOutput(self, "AuditSigningKeyId", value=audit.signing_key.key_id)
        CfnOutput(self, "AuditCallsQueueUrl", value=audit.calls.queue_url)
        CfnOutput(self, "ReconciliationStateMachineArn", value=reconciliation.state_machine.state_machine_arn)
        CfnOutput(self, "ReconciliationStartFunctionName", value=reconciliation.start.function_name)
