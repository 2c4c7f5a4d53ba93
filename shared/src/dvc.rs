//! DVC: the data version of a processed dataset is the md5 of its bytes, exactly as
//! DVC records it in `outs[0].md5` of a `.dvc` file.

use md5::{Digest, Md5};

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn md5_matches_the_reference_value() {
        assert_eq!(super::md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(super::md5_hex(b"rps"), "651cb023e8a7c22b217106f3145522d3");
    }
}
