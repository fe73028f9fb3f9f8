"""Two stages from one config: names, environment, and what differs between dev and prod."""

from __future__ import annotations

from typing import Any

import pytest


def artifact(synth: Any, stack: str) -> Any:
    return synth.assembly.get_stack_by_name(stack)


def test_stacks_are_named_for_their_stage_and_concern_and_deploy_anywhere(synth: Any) -> None:
    for stack in synth.stacks:
        a = artifact(synth, stack)
        assert a.stack_name == stack
        assert a.environment.account == "unknown-account" and a.environment.region == "unknown-region"


def test_the_stacks_depend_on_each_other_in_one_direction(synth: Any) -> None:
    def deps(stack: str) -> set[str]:
        return {d.id for d in artifact(synth, stack).dependencies if not d.id.endswith(".assets")}

    assert deps("mlops-dev-network") == set()
    assert deps("mlops-dev-data-lake") == set()
    assert deps("mlops-dev-ml-pipeline") == {"mlops-dev-network", "mlops-dev-data-lake"}
    assert deps("mlops-dev-serving") >= {"mlops-dev-ml-pipeline", "mlops-dev-data-lake"}
    assert not any(d.startswith("mlops-dev") for d in deps("mlops-prod-serving"))  # stages are independent


def test_prod_is_protected_from_deletion_and_dev_is_not(synth: Any) -> None:
    for stack in synth.stacks:
        assert artifact(synth, stack).termination_protection == stack.startswith("mlops-prod")


@pytest.mark.parametrize(("stage", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_prod_retains_its_data_and_dev_deletes_it(synth: Any, stage: str, policy: str) -> None:
    resources = synth.templates[f"mlops-{stage}-data-lake"]["Resources"]
    stateful = [r for r in resources.values() if r["Type"] in ("AWS::S3::Bucket", "AWS::KMS::Key")]
    assert len(stateful) == 6
    assert {r["DeletionPolicy"] for r in stateful} == {policy}
    auto_delete = [r for r in resources.values() if r["Type"] == "Custom::S3AutoDeleteObjects"]
    assert len(auto_delete) == (5 if stage == "dev" else 0)  # dev empties its buckets on destroy


def test_prod_runs_more_nat_gateways_keeps_logs_longer_and_versions_longer(synth: Any) -> None:
    def count(stack: str, type_: str) -> int:
        return len(synth.resources(stack, type_))

    assert (count("mlops-dev-network", "AWS::EC2::NatGateway"), count("mlops-prod-network", "AWS::EC2::NatGateway")) \
        == (1, 2)
    retention = {stage: synth.one(f"mlops-{stage}-network", "AWS::Logs::LogGroup")["RetentionInDays"]
                 for stage in ("dev", "prod")}
    assert retention == {"dev": 30, "prod": 365}
    deployer_logs = {stage: synth.one(f"mlops-{stage}-serving", "AWS::Logs::LogGroup")["RetentionInDays"]
                     for stage in ("dev", "prod")}
    assert deployer_logs == retention


def test_both_stages_fit_in_one_account_without_name_clashes(synth: Any) -> None:
    names = {}
    for stage in ("dev", "prod"):
        names[stage] = {
            synth.one(f"mlops-{stage}-ml-pipeline", "AWS::SageMaker::Pipeline")["PipelineName"],
            synth.one(f"mlops-{stage}-ml-pipeline", "AWS::SageMaker::ModelPackageGroup")["ModelPackageGroupName"],
            synth.one(f"mlops-{stage}-data-lake", "AWS::Glue::Database")["DatabaseInput"]["Name"],
        }
    assert names["dev"].isdisjoint(names["prod"])


def test_the_vpc_reaches_aws_services_through_endpoints(synth: Any) -> None:
    endpoints = [r["Properties"] for r in synth.resources("mlops-dev-network", "AWS::EC2::VPCEndpoint").values()]
    services = {str(e["ServiceName"]).rsplit(".", 1)[-1] if isinstance(e["ServiceName"], str)
                else e["ServiceName"]["Fn::Join"][1][-1].rsplit(".", 1)[-1] for e in endpoints}
    assert {"s3", "sts", "kms", "glue", "logs", "dkr", "api", "runtime"} <= services
    gateway = [e for e in endpoints if e.get("VpcEndpointType") == "Gateway"]
    assert len(gateway) == 1  # S3; the others are interface endpoints with private DNS
    assert all(e.get("PrivateDnsEnabled") for e in endpoints if e.get("VpcEndpointType") == "Interface")
    flow_logs = synth.resources("mlops-dev-network", "AWS::EC2::FlowLog")
    assert len(flow_logs) == 1
    sg = [r["Properties"] for r in synth.resources("mlops-dev-network", "AWS::EC2::SecurityGroup").values()
          if r["Properties"]["GroupDescription"].startswith("SageMaker")]
    assert len(sg) == 1
    assert {(e["IpProtocol"], e.get("FromPort")) for e in sg[0]["SecurityGroupEgress"]} == {("tcp", 443)}


def test_a_stage_with_account_and_region_synthesizes_without_look_ups(tmp_path: Any, synth: Any) -> None:
    import json

    from aws_cdk import App

    from infra.app import FEATURE_FLAGS
    from infra.config import stage_config
    from infra.stacks import NetworkStack

    app = App(outdir=str(tmp_path), context=FEATURE_FLAGS, builtin_cloud_formation_validation=False)
    config = stage_config("prod", {"account": "123456789012", "region": "eu-west-1"})
    NetworkStack(app, config)
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "missing" not in manifest  # no context provider would have to call AWS
    template = json.loads((tmp_path / "mlops-prod-network.template.json").read_text())
    zones = {json.dumps(r["Properties"]["AvailabilityZone"]) for r in template["Resources"].values()
             if r["Type"] == "AWS::EC2::Subnet"}
    assert len(zones) == 2 and all("Fn::GetAZs" in z for z in zones)
    assert manifest["artifacts"]["mlops-prod-network"]["environment"] == "aws://123456789012/eu-west-1"
    assert config.definition_region == "eu-west-1"
