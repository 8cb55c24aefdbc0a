"""CloudWatch tail paging rules (contract D.1) with botocore's Stubber; no network."""

from __future__ import annotations

from botocore.stub import Stubber
from offline import offline_client

from jupyter_remote.engines.cloudwatch import CloudWatchLogTail, LogStreamFinder

GROUP = "/aws/sagemaker/ProcessingJobs"


def _page(messages, token):
    events = [{"timestamp": i, "message": m, "ingestionTime": i} for i, m in enumerate(messages)]
    return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/0"}


def test_empty_page_with_a_new_token_is_not_the_end():
    logs = offline_client("logs")
    finder = LogStreamFinder(logs, "job")
    tail = CloudWatchLogTail("algo-1", logs=logs, finder=finder, min_interval=0)
    stream = "job/algo-1-1700000000"
    with Stubber(logs) as stub:
        stub.add_response(
            "describe_log_streams",
            {"logStreams": [{"logStreamName": stream}, {"logStreamName": "job/x"}]},
            {"logGroupName": GROUP, "logStreamNamePrefix": "job/"},
        )
        head = {"logGroupName": GROUP, "logStreamName": stream, "startFromHead": True}
        stub.add_response("get_log_events", _page(["a"], "f/1"), head)
        stub.add_response("get_log_events", _page([], "f/2"), {**head, "nextToken": "f/1"})
        stub.add_response("get_log_events", _page(["b\n"], "f/3"), {**head, "nextToken": "f/2"})
        stub.add_response("get_log_events", _page([], "f/3"), {**head, "nextToken": "f/3"})
        assert tail.read() == ["a", "b"]
        stub.assert_no_pending_responses()
    assert tail.cursor == "f/3" and tail.log_stream == stream


def test_no_permission_to_read_logs_says_so_once():
    logs = offline_client("logs")
    tail = CloudWatchLogTail("algo-1", logs=logs, finder=LogStreamFinder(logs, "job"))
    with Stubber(logs) as stub:
        stub.add_client_error(
            "describe_log_streams", "AccessDeniedException", "not authorized: logs:Describe", 400
        )
        first = tail.read(final=True)
        assert tail.read(final=True) == []
    assert len(first) == 1 and "cannot read CloudWatch logs" in first[0]
