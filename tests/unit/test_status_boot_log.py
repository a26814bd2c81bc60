"""scripts/status.py's search for a node's last boot line: newest window first, so a node up for months finds it
without reading everything since its launch, and every read is bounded."""

from __future__ import annotations

from scripts import status

DAY = status.DAY_MS
NOW = 1_000 * DAY


class LogsStandIn:
    """STAND-IN for CloudWatch Logs' filter_log_events: events of one stream, filtered by a quoted term and a time
    window, one event a page (so that paging is exercised); it records each call's window."""

    def __init__(self, events: list[dict]) -> None:
        self.events, self.windows = events, []

    def filter_log_events(self, logGroupName, logStreamNames, filterPattern, startTime, endTime, nextToken=None):  # noqa: N803
        self.windows.append((startTime, endTime))
        term = filterPattern.strip('"')
        # Ascending in time, as CloudWatch Logs answers.
        found = sorted(
            (e for e in self.events if term in e["message"] and startTime <= e["timestamp"] < endTime), key=lambda e: e["timestamp"]
        )
        index = int(nextToken or 0)
        more = index + 1 < len(found)
        return {"events": found[index : index + 1], **({"nextToken": str(index + 1)} if more else {})}


def test_a_boot_forty_days_ago_is_found_reading_windows_newest_first():
    logs = LogsStandIn(
        [{"timestamp": NOW - 40 * DAY, "message": "wso2am-boot: done"}]
        + [{"timestamp": NOW - d * DAY, "message": "wso2am-boot: share-watch verdict: present"} for d in range(40)]
    )
    found = status.latest_line(logs, "g", "i-1", "wso2am-boot: done", NOW - 400 * DAY, NOW)
    assert found and found["timestamp"] == NOW - 40 * DAY
    assert logs.windows == [(NOW - DAY, NOW), (NOW - 7 * DAY, NOW - DAY), (NOW - 30 * DAY, NOW - 7 * DAY), (NOW - 90 * DAY, NOW - 30 * DAY)]


def test_the_latest_of_several_in_a_window_wins():
    logs = LogsStandIn([{"timestamp": NOW - h * 3_600_000, "message": "wso2am-boot: done"} for h in (1, 5, 9)])
    assert status.latest_line(logs, "g", "i-1", "wso2am-boot: done", NOW - 2 * DAY, NOW)["timestamp"] == NOW - 3_600_000


def test_reads_are_bounded_in_pages():
    logs = LogsStandIn([{"timestamp": NOW - h * 60_000, "message": "wso2am-boot: done"} for h in range(1, 50)])
    status.latest_line(logs, "g", "i-1", "wso2am-boot: done", NOW - 2 * DAY, NOW)
    assert len(logs.windows) == status.LOG_PAGES


def test_nothing_before_the_launch_is_read():
    logs = LogsStandIn([{"timestamp": NOW - 10 * DAY, "message": "wso2am-boot: done"}])
    assert status.latest_line(logs, "g", "i-1", "wso2am-boot: done", NOW - 5 * DAY, NOW) is None
    assert logs.windows[-1] == (NOW - 5 * DAY, NOW - DAY)
