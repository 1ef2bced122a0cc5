//! Random UUIDs (version 4), for the ids the service makes: item ids on
//! `POST /items` without one, and request ids. The randomness comes from
//! the caller (wasi:random in the component, the OS in the host).

/// 16 random bytes as a lowercase hyphenated UUID v4.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_variant_bits_are_set() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let zero = uuid_v4([0; 16]);
        assert_eq!(zero, "00000000-0000-4000-8000-000000000000");
        assert!(crate::validate::id(&zero).is_ok());
    }
}
