"""The alerting service: window reports become alerts, subscribers are told."""
