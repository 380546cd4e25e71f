//! The fixed parts of the transport stream: its two program tables (PAT
//! and PMT, ISO/IEC 13818-1 2.4.4) as whole packets, and the 33-bit PTS and
//! PCR fields of the packets that carry video.

use super::{PACKET, PID_PMT, PID_VIDEO, PROGRAM_NUMBER, TRANSPORT_STREAM_ID, WRAP};
use crate::stream::Codec;

/// CRC-32/MPEG-2 of PSI sections: polynomial 0x04C11DB7, not reflected,
/// initial value all ones, no final XOR.
pub(super) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Appends the section's CRC after filling in its section_length.
pub(super) fn finish_section(mut s: Vec<u8>) -> Vec<u8> {
    // section_length counts what follows its field, CRC included; 12 bits,
    // and our sections are a few dozen bytes.
    let len = (s.len() - 3 + 4) as u16;
    s[1] = 0xB0 | (len >> 8) as u8; // syntax indicator, '0', reserved '11'
    s[2] = len as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

pub(super) fn pat_section() -> Vec<u8> {
    let mut s = vec![0x00, 0, 0]; // table_id 0, length filled in later
    s.extend_from_slice(&TRANSPORT_STREAM_ID.to_be_bytes());
    s.push(0xC1); // reserved, version 0, current_next_indicator 1
    s.extend_from_slice(&[0, 0]); // section_number, last_section_number
    s.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    s.extend_from_slice(&(0xE000 | PID_PMT).to_be_bytes());
    finish_section(s)
}

pub(super) fn pmt_section(codec: Codec) -> Vec<u8> {
    let stream_type = match codec {
        Codec::H265 => 0x24,
        _ => 0x1B,
    };
    let mut s = vec![0x02, 0, 0]; // table_id 2, length filled in later
    s.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    s.push(0xC1); // reserved, version 0, current_next_indicator 1
    s.extend_from_slice(&[0, 0]); // section_number, last_section_number
    s.extend_from_slice(&(0xE000 | PID_VIDEO).to_be_bytes()); // PCR_PID
    s.extend_from_slice(&[0xF0, 0x00]); // program_info_length 0
    s.push(stream_type);
    s.extend_from_slice(&(0xE000 | PID_VIDEO).to_be_bytes());
    s.extend_from_slice(&[0xF0, 0x00]); // ES_info_length 0
    finish_section(s)
}

/// A packet holding one whole section: pointer field 0, then 0xFF fill.
pub(super) fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET] {
    let mut p = [0xFFu8; PACKET];
    p[0] = 0x47;
    p[1] = 0x40 | (pid >> 8) as u8; // payload_unit_start_indicator
    p[2] = pid as u8;
    p[3] = 0x10; // payload only, continuity counter set when sent
    p[4] = 0; // pointer_field
    let n = section.len().min(PACKET - 5);
    p[5..5 + n].copy_from_slice(&section[..n]);
    p
}

/// The 5-byte PTS field ('0010', 33 bits with marker bits).
pub(super) fn pts_field(pts: u64) -> [u8; 5] {
    let p = pts % WRAP;
    [
        0x21 | ((p >> 29) as u8 & 0x0E),
        (p >> 22) as u8,
        0x01 | ((p >> 14) as u8 & 0xFE),
        (p >> 7) as u8,
        0x01 | ((p << 1) as u8 & 0xFE),
    ]
}

/// The 6-byte PCR field: 33-bit base, 6 reserved bits, 9-bit extension 0.
pub(super) fn pcr_field(pcr: u64) -> [u8; 6] {
    let b = pcr % WRAP;
    [
        (b >> 25) as u8,
        (b >> 17) as u8,
        (b >> 9) as u8,
        (b >> 1) as u8,
        ((b & 1) as u8) << 7 | 0x7E,
        0,
    ]
}
