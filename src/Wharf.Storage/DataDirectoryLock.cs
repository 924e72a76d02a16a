namespace Wharf.Storage;

/// <summary>
/// Holds <c>wharf.lock</c> in the data directory for the life of the process, so two Wharf processes never share
/// one embedded store (the sweeper may then treat every staged file at start as left over by a crash).
/// </summary>
internal sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _lock;

    public DataDirectoryLock(string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        try
        {
            _lock = new FileStream(Path.Combine(dataDir, "wharf.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException($"The data directory is in use by another Wharf process: {dataDir}", ex);
        }
    }

    public void Dispose() => _lock.Dispose();
}
