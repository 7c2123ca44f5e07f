//! Streaming linear-interpolation resampling to a rate Opus accepts.
//!
//! Linear interpolation is the simplest resampler there is: no low-pass
//! filter, so downsampling can alias a little and upsampling dulls the top
//! octave slightly. For speech that is encoded at 32 kbit/s right after, the
//! difference is inaudible, and it needs no dependency and no FFT buffers.

/// One sample per channel; mono uses only the first slot.
pub(crate) type Frame = [f32; 2];

/// Converts a stream of frames from one rate to another, one input frame at
/// a time, keeping only the previous frame in memory.
///
/// Output frame `k` sits at input position `k * from / to`, computed in
/// integers so the output length never drifts: `n` input frames become
/// `ceil(n * to / from)` output frames.
pub(crate) struct LinearResampler {
    from: u64,
    to: u64,
    /// The last frame pushed, and its index in the input.
    prev: Option<(Frame, u64)>,
    /// Index of the next output frame.
    next_out: u64,
}

impl LinearResampler {
    pub(crate) fn new(from: u32, to: u32) -> Self {
        Self {
            from: u64::from(from),
            to: u64::from(to),
            prev: None,
            next_out: 0,
        }
    }

    /// Feeds one input frame; appends every output frame that now lies
    /// between the previous input frame and this one.
    pub(crate) fn push(&mut self, frame: Frame, out: &mut Vec<Frame>) {
        let index = match self.prev {
            None => 0,
            Some((prev, prev_index)) => {
                // Positions are in units of 1/to input frames.
                let start = prev_index * self.to;
                let end = start + self.to;
                loop {
                    let pos = self.next_out * self.from;
                    if pos >= end {
                        break;
                    }
                    let t = pos.saturating_sub(start) as f32 / self.to as f32;
                    out.push(lerp(prev, frame, t));
                    self.next_out += 1;
                }
                prev_index + 1
            }
        };
        self.prev = Some((frame, index));
    }

    /// Emits the output frames after the last input frame (held flat, there
    /// is nothing to interpolate towards).
    pub(crate) fn finish(&mut self, out: &mut Vec<Frame>) {
        if let Some((last, index)) = self.prev.take() {
            let end = (index + 1) * self.to;
            while self.next_out * self.from < end {
                out.push(last);
                self.next_out += 1;
            }
        }
    }
}

fn lerp(a: Frame, b: Frame, t: f32) -> Frame {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut resampler = LinearResampler::new(from, to);
        let mut out = Vec::new();
        for &x in input {
            resampler.push([x, -x], &mut out);
        }
        resampler.finish(&mut out);
        assert!(out.iter().all(|f| f[1] == -f[0]), "channels stay apart");
        out.into_iter().map(|f| f[0]).collect()
    }

    #[test]
    fn output_length_is_exact() {
        for (from, n, expected) in [
            (44_100, 44_100, 48_000),
            (22_050, 22_050, 48_000),
            (32_000, 32_000, 48_000),
            (96_000, 96_000, 48_000),
            (44_100, 441, 480),
            (44_100, 1, 2),
        ] {
            let out = resample(from, 48_000, &vec![0.0; n]);
            assert_eq!(out.len(), expected, "{from} Hz, {n} frames");
        }
        assert!(resample(44_100, 48_000, &[]).is_empty());
    }

    #[test]
    fn interpolates_between_samples() {
        // Doubling the rate puts a midpoint between each pair.
        let out = resample(24_000, 48_000, &[0.0, 1.0, 0.0]);
        assert_eq!(out, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]);
        // Halving keeps every other sample.
        let out = resample(96_000, 48_000, &[0.1, 0.2, 0.3, 0.4]);
        assert_eq!(out, [0.1, 0.3]);
    }
}
