// Placeholder until the module lands (issue 4).
enum ShoalHostProfileModule {}
