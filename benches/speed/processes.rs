pub fn run(_rounds: usize, _quick: bool) {}
pub fn child(_args: &[String]) {}
