"""Local creators of parameters, log groups, topics, queues, alarms, dashboards and schedules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_local.creators import (
    Context,
    Created,
    handles,
    json_text,
    physical_name,
    pick,
    tag_list,
)

if TYPE_CHECKING:
    from mlops_local.materialize import Materializer


# ---------------------------------------------------------------------------------------------
# SSM, logs, SNS, SQS
@handles("AWS::SSM::Parameter", "Name", "Value", "Type", "Description", "Tier", "AllowedPattern", "DataType", "Tags")
def _parameter(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = p.get("Name") or f"CFN-{ctx.logical_id}-{physical_name(ctx.stack.name, ctx.logical_id)[-12:]}"
    args: dict[str, Any] = {"Name": name, "Value": str(p["Value"]), "Type": p.get("Type", "String")}
    args.update(pick(p, "Description", "Tier", "AllowedPattern", "DataType"))
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"])
    m.client("ssm").put_parameter(**args)
    return Created(name, {"Type": args["Type"], "Value": args["Value"]})


@handles("AWS::Logs::LogGroup", "LogGroupName", "RetentionInDays", "KmsKeyId", "Tags", "LogGroupClass")
def _log_group(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    logs = m.client("logs")
    name = ctx.name(p.get("LogGroupName"), max_length=512)
    args: dict[str, Any] = {"logGroupName": name}
    if p.get("KmsKeyId"):
        args["kmsKeyId"] = p["KmsKeyId"]
    if p.get("Tags"):
        args["tags"] = {t["Key"]: t["Value"] for t in tag_list(p["Tags"])}
    logs.create_log_group(**args)
    if p.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    return Created(name, {"Arn": f"arn:aws:logs:{m.region}:{m.account}:log-group:{name}:*"})


@handles(
    "AWS::SNS::Topic",
    "TopicName",
    "DisplayName",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "Subscription",
    "Tags",
    "TracingConfig",
)
def _topic(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    sns = m.client("sns")
    fifo = str(p.get("FifoTopic", "")).lower() == "true"
    name = ctx.name(p.get("TopicName"), max_length=256, suffix=".fifo" if fifo else "")
    attributes = {
        k: str(p[k]).lower() if isinstance(p[k], bool) else str(p[k])
        for k in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication", "TracingConfig")
        if k in p
    }
    args: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"])
    arn = sns.create_topic(**args)["TopicArn"]
    for sub in p.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
    return Created(arn, {"TopicArn": arn, "TopicName": name})


@handles(
    "AWS::SNS::Subscription",
    "TopicArn",
    "Protocol",
    "Endpoint",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "Region",
)
def _subscription(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    attributes: dict[str, str] = {}
    for key in ("FilterPolicy", "RedrivePolicy"):
        if key in p:
            attributes[key] = json_text(p[key])
    if "FilterPolicyScope" in p:
        attributes["FilterPolicyScope"] = p["FilterPolicyScope"]
    if "RawMessageDelivery" in p:
        attributes["RawMessageDelivery"] = str(p["RawMessageDelivery"]).lower()
    arn = m.client("sns").subscribe(
        TopicArn=p["TopicArn"],
        Protocol=p["Protocol"],
        Endpoint=p.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(arn)


@handles("AWS::SNS::TopicPolicy", "PolicyDocument", "Topics")
def _topic_policy(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    for topic in p["Topics"]:
        m.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json_text(p["PolicyDocument"])
        )
    return Created(physical_name(ctx.stack.name, ctx.logical_id))


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)


@handles("AWS::SQS::Queue", "QueueName", "Tags", *_QUEUE_ATTRIBUTES)
def _queue(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    sqs = m.client("sqs")
    fifo = str(p.get("FifoQueue", "")).lower() == "true"
    name = ctx.name(p.get("QueueName"), max_length=80, suffix=".fifo" if fifo else "")
    attributes = {}
    for key in _QUEUE_ATTRIBUTES:
        if key in p:
            value = p[key]
            attributes[key] = (
                json_text(value)
                if isinstance(value, dict)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if p.get("Tags"):
        args["tags"] = {t["Key"]: t["Value"] for t in tag_list(p["Tags"])}
    url = sqs.create_queue(**args)["QueueUrl"]
    arn = f"arn:aws:sqs:{m.region}:{m.account}:{name}"
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


@handles("AWS::SQS::QueuePolicy", "PolicyDocument", "Queues")
def _queue_policy(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    for url in p["Queues"]:
        m.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json_text(p["PolicyDocument"])})
    return Created(physical_name(ctx.stack.name, ctx.logical_id))


# ---------------------------------------------------------------------------------------------
# CloudWatch
_ALARM_KEYS = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


@handles("AWS::CloudWatch::Alarm", "AlarmName", "Tags", *_ALARM_KEYS)
def _alarm(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("AlarmName"), max_length=255)
    args: dict[str, Any] = {"AlarmName": name, **pick(p, *_ALARM_KEYS)}
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in args:
            args[key] = int(args[key])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    if "Metrics" in args:
        for metric in args["Metrics"]:
            if "MetricStat" in metric:
                metric["MetricStat"]["Period"] = int(metric["MetricStat"]["Period"])
    m.client("cloudwatch").put_metric_alarm(**args)
    return Created(name, {"Arn": f"arn:aws:cloudwatch:{m.region}:{m.account}:alarm:{name}"})


@handles("AWS::CloudWatch::Dashboard", "DashboardName", "DashboardBody")
def _dashboard(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("DashboardName"), max_length=255)
    m.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=json_text(p["DashboardBody"]))
    return Created(name)


@handles("AWS::Scheduler::ScheduleGroup", "Name", "Tags")
def _schedule_group(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("Name"))
    args: dict[str, Any] = {"Name": name}
    if p.get("Tags"):
        args["Tags"] = tag_list(p["Tags"])
    arn = m.client("scheduler").create_schedule_group(**args)["ScheduleGroupArn"]
    return Created(name, {"Arn": arn})


@handles(
    "AWS::Scheduler::Schedule",
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "State",
    "Description",
)
def _schedule(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    name = ctx.name(p.get("Name"))
    args: dict[str, Any] = {
        "Name": name,
        **pick(p, "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "State", "Description"),
        "FlexibleTimeWindow": p.get("FlexibleTimeWindow") or {"Mode": "OFF"},
        "Target": pick(p["Target"], "Arn", "RoleArn", "Input"),
    }
    arn = m.client("scheduler").create_schedule(**args)["ScheduleArn"]
    return Created(name, {"Arn": arn})
