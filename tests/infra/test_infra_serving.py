"""The serving stack: endpoint, capture, autoscaling, blue/green with rollback, deployer, Model Monitor."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from infra.constructs.model_monitor import monitored_features
from infra.constructs.model_monitor.images import ANALYZER_REGISTRIES, ANALYZER_REPOSITORY
from pipelines.definition import DEFAULT_SPEC
from pipelines.paths import TRAINING_CODE

DEV = "mlops-dev-serving"
PROD = "mlops-prod-serving"


def test_the_endpoint_serves_the_given_model_package_in_the_vpc(synth: Any) -> None:
    model = synth.one(DEV, "AWS::SageMaker::Model")
    assert model["Containers"] == [{"ModelPackageName": synth.dev_arn}]
    assert model["VpcConfig"]["Subnets"] and model["VpcConfig"]["SecurityGroupIds"]


def test_data_capture_goes_to_the_artefacts_bucket_encrypted(synth: Any) -> None:
    config = synth.one(DEV, "AWS::SageMaker::EndpointConfig")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    destination = json.dumps(capture["DestinationS3Uri"])
    assert "DataLakeArtifacts" in destination and destination.endswith('/datacapture/"]]}')
    assert "DataLakeKey" in json.dumps(capture["KmsKeyId"]) and "DataLakeKey" in json.dumps(config["KmsKeyId"])


def test_the_endpoint_updates_blue_green_and_rolls_back_on_errors_or_latency(synth: Any) -> None:
    endpoint = synth.one(DEV, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == "mlops-dev-endpoint"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}, "WaitIntervalInSeconds": 300}
    alarms = {json.dumps(a["AlarmName"]) for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]}
    watched = {k: v["Properties"] for k, v in synth.resources(DEV, "AWS::CloudWatch::Alarm").items()
               if json.dumps({"Ref": k}) in alarms}
    assert {p["MetricName"] for p in watched.values()} == {"Invocation5XXErrors", "ModelLatency"}
    for p in watched.values():
        assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == {
            "EndpointName": "mlops-dev-endpoint", "VariantName": "AllTraffic"}
    latency = next(p for p in watched.values() if p["MetricName"] == "ModelLatency")
    assert latency["Threshold"] == 500_000  # 500 ms, in the metric's microseconds


def test_the_variant_scales_on_invocations_per_instance(synth: Any) -> None:
    target = synth.one(DEV, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["ResourceId"] == "endpoint/mlops-dev-endpoint/variant/AllTraffic"
    policy = synth.one(DEV, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == 200


def test_an_approved_version_of_the_group_is_deployed_by_a_scoped_function(synth: Any) -> None:
    for stack in (DEV, PROD):  # with or without an endpoint yet
        t = synth.template(stack)
        t.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
            "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [Match.string_like_regexp("churn-models-")],
                       "ModelApprovalStatus": ["Approved"]}}})
        fn = synth.one(stack, "AWS::Lambda::Function")
        assert fn["Handler"] == "index.handler" and fn["Runtime"].startswith("python3.")
        env = fn["Environment"]["Variables"]
        assert env["ENDPOINT_NAME"].startswith("mlops-") and env["CANARY_PERCENT"]
        assert "Ref" in json.dumps(env["ROLLBACK_ALARMS"])
    statements = [s for p in synth.resources(DEV, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    update = next(s for s in statements if s.get("Sid") == "UpdateTheEndpoint")
    assert json.dumps(update["Resource"]).endswith(':endpoint/mlops-dev-endpoint"]]}')
    create = json.dumps(next(s for s in statements if s.get("Sid") == "CreateVersionedModelAndConfig")["Resource"])
    assert "model/mlops-dev-endpoint-*" in create and "endpoint-config/mlops-dev-endpoint-*" in create


def test_without_a_model_package_there_is_no_endpoint_and_synth_says_why(synth: Any) -> None:
    assert synth.resources(PROD, "AWS::SageMaker::Endpoint") == {}
    assert synth.resources(PROD, "AWS::SageMaker::MonitoringSchedule") == {}
    warnings = [m.entry.data for m in synth.assembly.get_stack_by_name(PROD).messages
                if m.entry.type == "aws:cdk:warning"]
    assert any("No endpoint in mlops-prod-serving" in w and "modelPackageArn" in w for w in warnings)
    dev_warnings = [m.entry.data for m in synth.assembly.get_stack_by_name(DEV).messages
                    if m.entry.type == "aws:cdk:warning"]
    assert not any("No endpoint" in w for w in dev_warnings)


def test_model_monitor_checks_data_quality_hourly_against_the_pipelines_baseline(synth: Any) -> None:
    job = synth.one(DEV, "AWS::SageMaker::DataQualityJobDefinition")
    baseline = job["DataQualityBaselineConfig"]
    assert json.dumps(baseline["ConstraintsResource"]["S3Uri"]).endswith('/monitoring/baseline/constraints.json"]]}')
    assert json.dumps(baseline["StatisticsResource"]["S3Uri"]).endswith('/monitoring/baseline/statistics.json"]]}')
    outputs = job["DataQualityJobOutputConfig"]
    assert json.dumps(outputs["MonitoringOutputs"][0]["S3Output"]["S3Uri"]).endswith('/monitoring/reports/"]]}')
    assert "DataLakeKey" in json.dumps(outputs["KmsKeyId"])
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-dev-endpoint"
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert job["DataQualityAppSpecification"]["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    # The analyzer image: this region's registry account, from a mapping (no look-up at synth).
    image = json.dumps(job["DataQualityAppSpecification"]["ImageUri"])
    assert "Fn::FindInMap" in image and ANALYZER_REPOSITORY in image
    mapping = next(iter(synth.templates[DEV]["Mappings"].values()))
    assert mapping["eu-west-1"]["account"] == ANALYZER_REGISTRIES["eu-west-1"]
    schedule = synth.one(DEV, "AWS::SageMaker::MonitoringSchedule")
    assert schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert schedule["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"


def test_drift_on_any_feature_raises_one_alarm_that_starts_retraining(synth: Any) -> None:
    features = monitored_features(TRAINING_CODE / DEFAULT_SPEC)
    assert "churned" not in features and "customer_id" not in features and "tenure_months" in features
    drift = {p["Properties"]["MetricName"] for p in synth.resources(DEV, "AWS::CloudWatch::Alarm").values()
             if p["Properties"].get("Namespace") == "aws/sagemaker/Endpoints/data-metrics"}
    assert drift == {f"feature_baseline_drift_{f}" for f in features}
    composite = synth.resources(DEV, "AWS::CloudWatch::CompositeAlarm")
    assert len(composite) == 1
    logical_id = next(iter(composite))
    assert json.dumps(composite[logical_id]["Properties"]["AlarmRule"]).count("ALARM(") == len(features)
    rules = [r["Properties"] for r in synth.resources(DEV, "AWS::Events::Rule").values()
             if r["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]]
    assert len(rules) == 1
    assert rules[0]["EventPattern"]["resources"] == [{"Fn::GetAtt": [logical_id, "Arn"]}]
    assert rules[0]["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert ":pipeline/churn-training-dev" in json.dumps(rules[0]["Targets"][0]["Arn"])


def test_analyzer_registries_agree_with_the_sagemaker_sdk() -> None:
    import importlib.util
    from pathlib import Path

    # Located, not imported: importing the SDK takes seconds.
    spec = importlib.util.find_spec("sagemaker")
    assert spec and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "core" / "image_uri_config" / "model-monitor.json"
    sdk = json.loads(path.read_text())
    registries = next(iter(sdk["versions"].values()))["registries"]
    assert next(iter(sdk["versions"].values()))["repository"] == ANALYZER_REPOSITORY
    for region, account in ANALYZER_REGISTRIES.items():
        assert registries.get(region) == account, region
