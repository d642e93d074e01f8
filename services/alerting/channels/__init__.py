"""Notification channels: webhook (Alertmanager-compatible, signed), Slack, e-mail, PagerDuty."""

from alerting.channels.delivery import ChannelNotifier, open_notifier

__all__ = ["ChannelNotifier", "open_notifier"]
