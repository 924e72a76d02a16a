using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.WebUtilities;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Server.Api;

namespace Wharf.Benchmarks;

/// <summary>Id generation (monotonic UUIDv7), base62 rendering and parsing: on every upload and every cursor.</summary>
[MemoryDiagnoser]
public class IdBenchmarks
{
    private readonly IdGenerator _ids = new(TimeProvider.System);
    private readonly string _fileId = WharfIds.File(new IdGenerator(TimeProvider.System).Next());

    [Benchmark]
    public UInt128 NextId() => _ids.Next();

    [Benchmark]
    public string NewFileId() => WharfIds.File(_ids.Next());

    [Benchmark]
    public bool ParseCursor() => WharfIds.IsFileId(_fileId);
}

/// <summary>Serialising a list page of 20 file objects with the source-generated wire context.</summary>
[MemoryDiagnoser]
public class ListPageBenchmarks
{
    private FileList _page = null!;

    [GlobalSetup]
    public void Setup()
    {
        var ids = new IdGenerator(TimeProvider.System);
        var files = Enumerable.Range(0, 20).Select(i => new FileRecord
        {
            Id = WharfIds.File(ids.Next()),
            WorkspaceId = "ws_00000000000000000000000000000001",
            Bytes = 1024 + i,
            CreatedAt = 1_795_000_000,
            Filename = $"requests-{i}.jsonl",
            Purpose = "batch",
            Status = FileStatus.Processed,
            ExpiresAt = 1_797_592_000,
            Metadata = new Dictionary<string, string> { ["team"] = "search" },
            Provider = "local",
            Sha256 = new string('a', 64),
        }).ToList();
        _page = FileList.From(new Page<FileRecord>(files, HasMore: true));
    }

    [Benchmark]
    public byte[] SerializePage() => JsonSerializer.SerializeToUtf8Bytes(_page, WireJsonContext.Default.FileList);
}

/// <summary>Reading a small multipart upload body section by section, as <c>POST /v1/files</c> does.</summary>
[MemoryDiagnoser]
public class MultipartBenchmarks
{
    private byte[] _body = [];

    [GlobalSetup]
    public void Setup()
    {
        var sb = new StringBuilder();
        sb.Append("--b0und\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n");
        sb.Append("--b0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n");
        sb.Append(new string('x', 1024)).Append("\r\n--b0und--\r\n");
        _body = Encoding.ASCII.GetBytes(sb.ToString());
    }

    [Benchmark]
    public async Task<long> ReadSections()
    {
        var reader = new MultipartReader("b0und", new MemoryStream(_body));
        long total = 0;
        while (await reader.ReadNextSectionAsync() is { } section)
        {
            var buffer = new byte[4096];
            int read;
            while ((read = await section.Body.ReadAsync(buffer)) > 0)
            {
                total += read;
            }
        }
        return total;
    }
}
