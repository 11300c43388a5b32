import ConfvaultCore
import Dispatch
import Foundation

/// What the executable does when it is asked to stop: Ctrl-C (SIGINT), `kill` or a service manager
/// (SIGTERM).
enum Interrupts {
  /// Listening for the life of the process: a source that is released stops listening.
  nonisolated(unsafe) private static let sources: [any DispatchSourceSignal] = [SIGINT, SIGTERM].map { sig in
    // Ignored first, so that the signal only reaches the source (libdispatch then takes it over);
    // the default action is put back just before the signal is raised again.
    signal(sig, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
    source.setEventHandler {
      TemporaryFiles.removeAll()
      signal(sig, SIG_DFL)
      // Dispatch's threads block signals; this one must take it, so that the process ends by it
      // and its parent sees "killed by signal", as without this handler.
      var signals = sigset_t()
      sigemptyset(&signals)
      sigaddset(&signals, sig)
      pthread_sigmask(SIG_UNBLOCK, &signals, nil)
      raise(sig)
      _exit(128 + sig)
    }
    source.resume()
    return source
  }

  /// From now on, SIGINT and SIGTERM first remove the temporary files and folders being written
  /// (`TemporaryFiles`), then end the process by the same signal.
  static func removeTemporaryFilesOnStop() {
    _ = sources
  }
}
