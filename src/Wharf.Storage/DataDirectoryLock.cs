namespace Wharf.Storage;

/// <summary>
/// Holds <c>wharf.lock</c> in the data directory for the life of the process, so two Wharf processes never share
/// one embedded store (the sweeper may then treat every staged file at start as left over by a crash).
/// </summary>
/// <remarks>
/// Opening the lock file fails alike (an <see cref="IOException"/>) when another process holds it and when the
/// directory cannot be written (a read-only file system), so the directory is first proven writable with a file of
/// its own: a failure to take the lock after that is another process.
/// </remarks>
internal sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _lock;

    public DataDirectoryLock(string dataDir)
    {
        try
        {
            Directory.CreateDirectory(dataDir);
            string probe = Path.Combine(dataDir, $".wharf-write-test-{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"The data directory is read-only or not writable by this process: {dataDir} ({ex.Message}). "
                + "Wharf writes its catalog and files there: give it a writable directory (Wharf:DataDir).", ex);
        }
        try
        {
            _lock = new FileStream(Path.Combine(dataDir, "wharf.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new InvalidOperationException($"The lock file in the data directory is not writable by this process: {dataDir} ({ex.Message}).", ex);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException($"The data directory is in use by another Wharf process: {dataDir}", ex);
        }
    }

    public void Dispose() => _lock.Dispose();
}
