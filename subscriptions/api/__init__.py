"""REST API of subscribers and subscriptions, with the operator actions on a subscription."""
