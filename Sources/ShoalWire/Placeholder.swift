enum ShoalWirePlaceholder {}
