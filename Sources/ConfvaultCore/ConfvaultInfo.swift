/// Facts about this build of Confvault.
public enum ConfvaultInfo {
  public static let version = "0.1.0"
}
