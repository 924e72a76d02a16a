using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Wharf.Storage.FileSystem;

/// <summary>
/// Room held on the data directory's file system for the catalog writes that free space. A full disk must not block
/// deletes, yet a delete is a catalog write too (SQLite appends it to its write-ahead log, which may have to grow).
/// The reserve is a file of <see cref="Bytes"/> bytes; when a write that frees space fails with SQLITE_FULL it is
/// deleted so that write can commit, and it is taken again as soon as there is room for it (after blobs are removed,
/// before an upload is staged, at a readiness check). While it cannot be taken again, uploads are refused.
/// </summary>
internal sealed partial class SpaceReserve
{
    /// <summary>The reserve's file name in the data directory.</summary>
    public const string FileName = "space.reserve";

    /// <summary>
    /// Twice SQLite's automatic checkpoint (1,000 pages of 4 KiB plus frame headers, about 4 MiB), beyond which the
    /// write-ahead log starts again from its beginning instead of growing: room for the log to reach that size.
    /// </summary>
    public const long Bytes = 8 * 1024 * 1024;

    private const int ChunkBytes = 1024 * 1024;
    private readonly string _path;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile bool _held;

    public SpaceReserve(string path, ILogger<SpaceReserve> logger)
    {
        _path = path;
        _logger = logger;
        var existing = new FileInfo(path);
        _held = existing.Exists && existing.Length == Bytes;
        if (!TryTake())
        {
            NotTakenAtStart(_logger, Bytes);
        }
    }

    /// <summary>The file that holds the room (in the data directory).</summary>
    public string Path => _path;

    public bool IsHeld => _held;

    /// <summary>Takes the room again when it was given up and there is enough free; returns whether it is held.</summary>
    public bool TryTake()
    {
        if (_held)
        {
            return true;
        }
        lock (_gate)
        {
            if (_held)
            {
                return true;
            }
            if (DiskSpace.AvailableBytes(System.IO.Path.GetDirectoryName(_path)!) is { } free && free < Bytes)
            {
                return false;
            }
            try
            {
                // Bytes that do not compress, written for real: a sparse or zero-filled file could hold no room at all.
                byte[] chunk = RandomNumberGenerator.GetBytes(ChunkBytes);
                using (var file = new FileStream(_path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
                {
                    for (long written = 0; written < Bytes; written += ChunkBytes)
                    {
                        file.Write(chunk);
                    }
                    file.Flush(flushToDisk: true);
                }
                _held = true;
                Taken(_logger, Bytes);
                return true;
            }
            catch (IOException)
            {
                TryDelete();
                return false;
            }
        }
    }

    /// <summary>Gives the room up (deletes the file); returns whether it was held.</summary>
    public bool Release()
    {
        lock (_gate)
        {
            if (!_held)
            {
                return false;
            }
            _held = false;
            TryDelete();
            Released(_logger, Bytes);
            return true;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The disk is full: the {Bytes} bytes kept for deletes are given up so a delete can be written. Uploads are refused until there is room for them again.")]
    private static partial void Released(ILogger logger, long bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "The {Bytes} bytes kept for deletes on a full disk are held.")]
    private static partial void Taken(ILogger logger, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The disk has no room for the {Bytes} bytes kept for deletes: uploads are refused until there is.")]
    private static partial void NotTakenAtStart(ILogger logger, long bytes);

    private void TryDelete()
    {
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
            // Left as it is: the next take writes it again from the start.
        }
    }
}

/// <summary>Free space and "no space left" errors of the file system.</summary>
internal static class DiskSpace
{
    /// <summary>Bytes this process may still write on the file system that holds <paramref name="directory"/>, if known.</summary>
    public static long? AvailableBytes(string directory)
    {
        try
        {
            string root = OperatingSystem.IsWindows() ? Path.GetPathRoot(Path.GetFullPath(directory))! : directory;
            return new DriveInfo(root).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Whether an I/O failure means the file system (or the user's quota on it) is full.</summary>
    public static bool IsFull(IOException exception) => exception.HResult switch
    {
        // Unix errno as .NET reports it: ENOSPC (28 on Linux and macOS), EDQUOT (122 on Linux, 69 on macOS).
        28 => true,
        122 => OperatingSystem.IsLinux(),
        69 => OperatingSystem.IsMacOS(),
        // Windows: ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL.
        unchecked((int)0x80070070) or unchecked((int)0x80070027) => true,
        _ => false,
    };
}
