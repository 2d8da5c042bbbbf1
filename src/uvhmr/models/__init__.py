"""The networks: DMP (dense maps), IK (JointRefineNet + GIK-Net), UVI (UV inpainting), HMR baseline."""
