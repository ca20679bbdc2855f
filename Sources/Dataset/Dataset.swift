// Dataset module.
