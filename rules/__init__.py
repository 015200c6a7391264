"""Rules: conditions over events (MongoDB query language) and the actions they trigger."""
