// Topology model: see Topology.swift (being written).
enum ShoalTopologyPlaceholder {}
