//! Byte formats, without I/O: the pump.fun `TradeEvent` that comes in, the
//! `Bar` archive that goes to Kafka and WebSocket clients.

pub mod bar;
pub mod json;
pub mod trade;
