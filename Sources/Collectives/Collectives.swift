// Collectives module.
