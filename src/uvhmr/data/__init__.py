"""Training data: the mocap rule (pose prior, licensed mocap loaders, shards), the global-orientation
sampler shared with the dataset rule, and the joint augmentation shared with train_ik."""
