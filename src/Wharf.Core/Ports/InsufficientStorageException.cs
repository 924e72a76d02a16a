namespace Wharf.Core.Ports;

/// <summary>
/// The store has no room left for a write (a full disk or a quota of the file system): the blob store's bytes or the
/// catalog's row could not be written. Answered as <c>507 insufficient_storage</c>; nothing of the request is kept.
/// </summary>
public sealed class InsufficientStorageException(string message, Exception? innerException = null) : Exception(message, innerException);
