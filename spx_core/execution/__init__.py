"""Orders and brokers: order requests vs order state, the pre-trade gate, the paper broker, the IB adapter."""
