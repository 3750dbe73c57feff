enum ShoalLabPlaceholder {}
