enum ShoalTLSPlaceholder {}
