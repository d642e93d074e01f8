"""The feedback service: true outcomes and reviewers' flags onto the feedback topic."""
