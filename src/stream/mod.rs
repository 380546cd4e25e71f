//! The contract every layer shares about one camera stream, at the bottom
//! of the data flow so that the layers above depend on it and never on
//! each other upward: the RTP packet (`rtp`), the frame and its codec
//! parameters (`frame`), where frames go (`sink`), how work is told to
//! stop (`stop`), what the stream's state is (`status`) and the coarse
//! clock the receiving threads wake on (`ticker`).

pub mod frame;
pub mod rtp;
pub mod sink;
pub mod status;
pub mod stop;
pub mod ticker;

pub use frame::{Codec, Frame, VideoParams};
pub use sink::{DiscardSink, FrameSink};
pub use status::{StreamSnapshot, StreamState, StreamStatus};
pub use stop::{StopSource, StopToken};
