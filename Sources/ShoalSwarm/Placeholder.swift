enum ShoalSwarmPlaceholder {}
