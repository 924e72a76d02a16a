using System.Text;
using Wharf.Core.Batches;

namespace Wharf.Core.Tests.Batches;

/// <summary>The input file read line by line, each line checked, and the usage read from answers.</summary>
public sealed class BatchInputTests
{
    private static async Task<List<(int Number, string? Text)>> ReadAllAsync(string content, int maxLineBytes = 1024, int chunk = 3)
    {
        using var reader = new JsonlLineReader(new TrickleStream(Encoding.UTF8.GetBytes(content), chunk), maxLineBytes);
        var lines = new List<(int, string?)>();
        while (await reader.ReadAsync(CancellationToken.None))
        {
            lines.Add((reader.Number, reader.TooLong ? null : Encoding.UTF8.GetString(reader.Line.Span)));
        }
        return lines;
    }

    [Fact]
    public async Task Lines_are_split_at_LF_or_CRLF_numbered_from_1_and_the_last_needs_no_newline()
    {
        Assert.Equal([(1, "a"), (2, ""), (3, "b c"), (4, "last")], await ReadAllAsync("a\n\r\nb c\r\nlast"));
        Assert.Equal([(1, "a"), (2, "b")], await ReadAllAsync("a\nb\n"));
        Assert.Empty(await ReadAllAsync(""));
    }

    [Fact]
    public async Task A_line_longer_than_the_bound_is_reported_too_long_and_the_next_lines_are_read()
    {
        string longLine = new('x', 5000);
        var lines = await ReadAllAsync($"ok\n{longLine}\n{new string('y', 1024)}\n{longLine}", maxLineBytes: 1024, chunk: 700);

        Assert.Equal([(1, "ok"), (2, null), (3, new string('y', 1024)), (4, null)], lines);
    }

    [Fact]
    public async Task Reading_a_large_file_keeps_one_bounded_buffer()
    {
        var text = new StringBuilder();
        for (int i = 1; i <= 20_000; i++)
        {
            text.Append("{\"n\":").Append(i).Append("}\n");
        }
        var lines = await ReadAllAsync(text.ToString(), maxLineBytes: 2048, chunk: 65536);
        Assert.Equal(20_000, lines.Count);
        Assert.Equal((20_000, "{\"n\":20000}"), lines[^1]);
    }

    [Theory]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}""", null)]
    [InlineData("""not json""", "invalid_json")]
    [InlineData("""[1,2]""", "invalid_json")]
    [InlineData("""{"custom_id":"a"} {"x":1}""", "invalid_json")]
    [InlineData("""{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}""", "missing_custom_id")]
    [InlineData("""{"custom_id":"","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}""", "invalid_custom_id")]
    [InlineData("""{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}""", "invalid_custom_id")]
    [InlineData("""{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}""", "invalid_method")]
    [InlineData("""{"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m"}}""", "invalid_method")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}""", "invalid_url")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions"}""", "missing_body")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":"text"}""", "invalid_body")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}""", "missing_model")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":3}}""", "missing_model")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":true}}""", "stream_not_allowed")]
    [InlineData("""{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":false,"x":{"model":1}}}""", null)]
    public void Each_line_is_checked_as_OpenAI_checks_it(string line, string? code)
    {
        var error = BatchInputLine.Validate(Encoding.UTF8.GetBytes(line), "/v1/chat/completions", out string? customId);

        Assert.Equal(code, error?.Code);
        if (code is null)
        {
            Assert.Equal("a", customId);
        }
    }

    [Fact]
    public void A_good_line_gives_its_custom_id_and_its_body_bytes()
    {
        byte[] line = Encoding.UTF8.GetBytes("""{"body": {"model":"m","n":[1,2]} ,"custom_id":"c-1","method":"POST","url":"/v1/embeddings"}""");

        Assert.True(BatchInputLine.TryRead(line, out string? customId, out var body));

        Assert.Equal("c-1", customId);
        Assert.Equal("""{"model":"m","n":[1,2]}""", Encoding.UTF8.GetString(line.AsSpan()[body]));
    }

    [Fact]
    public void Usage_is_read_from_chat_responses_and_embeddings_answers()
    {
        var chat = AnswerUsage.Read("""{"id":"x","usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}"""u8);
        var responses = AnswerUsage.Read("""{"output":[{"usage":{"input_tokens":99}}],"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":1},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":14}}"""u8);
        var embeddings = AnswerUsage.Read("""{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"""u8);

        Assert.Equal(new BatchUsage(11, 3, 7, 2, 18), chat);
        Assert.Equal(new BatchUsage(5, 1, 9, 4, 14), responses);
        Assert.Equal(new BatchUsage(8, 0, 0, 0, 8), embeddings);
        Assert.Equal(BatchUsage.None, AnswerUsage.Read("""{"id":"no usage"}"""u8));
    }
}

/// <summary>A read-only stream that hands out at most <paramref name="chunk"/> bytes per read, as a network would.</summary>
internal sealed class TrickleStream(byte[] content, int chunk) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => content.Length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(buffer.Length, content.Length - _position), chunk);
        content.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
