import CMalloc

/// Memory freed into malloc's heaps, which it keeps for reuse.
///
/// What a phase of work held and let go lies between what is kept, where malloc cannot give it back
/// as the heap shrinks; and the large lists that come next are mapped on their own, never in it (the
/// executable has malloc map every block of 4 MiB or more so; see `Confvault.main`). A phase that
/// frees much (the walk of a folder of 100,000 files) gives it back to the system before the next
/// one grows.
///
/// `mallinfo2` is glibc's since 2.33 (Debian 12 has 2.36).
enum FreedMemory {
  /// Below this, what is free is left to malloc: the walk of 20,000 files leaves 3 to 6 MiB, not
  /// worth the millisecond `malloc_trim` takes.
  static let worthGivingBack = 8 << 20

  /// Gives the pages freed in malloc's heaps back to the system, when there are enough of them.
  static func giveBack() {
    if mallinfo2().fordblks > worthGivingBack { malloc_trim(0) }
  }
}
