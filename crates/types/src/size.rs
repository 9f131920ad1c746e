//! Sizes and instance kinds, in the forms LXD takes.

use crate::ValueError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceType {
    VirtualMachine,
    Container,
}

impl InstanceType {
    pub fn as_lxd(self) -> &'static str {
        match self {
            InstanceType::VirtualMachine => "virtual-machine",
            InstanceType::Container => "container",
        }
    }
}

/// A size in bytes, parsed from LXD-style strings such as `7GiB` or `512MB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(ValueError::new(
                "expected a number with a unit such as 7GiB",
            ));
        }
        let number: u64 = digits
            .parse()
            .map_err(|_| ValueError::new("number too large"))?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "kB" | "KB" => 1000,
            "MB" => 1000u64.pow(2),
            "GB" => 1000u64.pow(3),
            "TB" => 1000u64.pow(4),
            "PB" => 1000u64.pow(5),
            "EB" => 1000u64.pow(6),
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "PiB" => 1 << 50,
            "EiB" => 1 << 60,
            _ => return Err(ValueError::new("unknown unit")),
        };
        let bytes = number
            .checked_mul(multiplier)
            .ok_or(ValueError::new("size too large"))?;
        if bytes == 0 {
            return Err(ValueError::new("must be greater than zero"));
        }
        Ok(ByteSize(bytes))
    }
    /// The form LXD's `limits.memory` and disk `size` keys accept.
    pub fn to_lxd(self) -> String {
        format!("{}B", self.0)
    }
}
