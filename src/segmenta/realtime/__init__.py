"""Record changes from outside the process: a broker consumer behind a small seam (:mod:`.consumer`),
its NATS JetStream implementation (:mod:`.nats`) and applying rows given as Python objects (:mod:`.rows`)."""
