"""Reports: a rollouts file in, HTML or text people read out."""
