using Wharf.Core.Routing;

namespace Wharf.Core.Batches;

/// <summary>
/// A check of one good line beyond the validation's own: its 1-based <paramref name="line"/> number, its
/// <c>body.model</c> and its bytes. A fault it returns is reported (its line set by the validator).
/// </summary>
internal delegate BatchError? BatchLineCheck(int line, string model, ReadOnlySpan<byte> bytes);

/// <summary>What the check of a batch's input file found: its faults (at most <see cref="BatchInputValidator.MaxReportedErrors"/>) and its request lines.</summary>
internal sealed record BatchInputCheck(IReadOnlyList<BatchError> Errors, int Total);

/// <summary>
/// Checks a batch's input file in one streamed pass, the same for both executions: the input's size
/// (<c>MaxInputBytes</c>), each line's length (<c>MaxLineBytes</c>), the number of requests (<c>MaxLines</c>), each
/// line as <see cref="BatchInputLine.Validate(ReadOnlySpan{byte}, string, out string?)"/> checks it, and unique
/// <c>custom_id</c>s. Blank lines (and a byte order mark before the first line) are skipped. Each fault carries its
/// 1-based line; an input with no request is a fault too. Memory holds one line and the <c>custom_id</c>s seen.
/// </summary>
internal static class BatchInputValidator
{
    /// <summary>The most validation errors a failed batch reports (as OpenAI does, a bounded list).</summary>
    public const int MaxReportedErrors = 100;

    /// <summary>
    /// Reads <paramref name="content"/> to its end (or to the first fault that ends the check). A good line is handed
    /// to <paramref name="checkLine"/> (its number, <c>body.model</c> and bytes) when one is given; a fault it returns is
    /// reported (its line set here). Throws <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    public static async Task<BatchInputCheck> ValidateAsync(
        Stream content, string endpoint, BatchesOptions options, BatchLineCheck? checkLine, CancellationToken cancellationToken)
    {
        var errors = new List<BatchError>();
        int total = 0;
        using var reader = new JsonlLineReader(content, options.MaxLineBytes);
        // 128 bits of each custom_id's SHA-256, not the string: memory stays 16 bytes a line however long the ids are.
        var customIds = new HashSet<UInt128>();
        while (errors.Count < MaxReportedErrors && await reader.ReadAsync(cancellationToken))
        {
            if (reader.BytesRead > options.MaxInputBytes)
            {
                errors.Add(new BatchError(BatchInputLine.InputTooLarge,
                    $"The input file holds more than {options.MaxInputBytes} bytes, the most a batch's input file may hold.", "input_file_id", null));
                break;
            }
            if (reader.TooLong)
            {
                errors.Add(new BatchError(BatchInputLine.LineTooLong,
                    $"The line is longer than {options.MaxLineBytes} bytes, the most a line may hold.", null, reader.Number));
                continue;
            }
            var line = reader.Line.Span;
            if (BatchInputLine.IsBlank(line))
            {
                continue;
            }
            if (++total > options.MaxLines)
            {
                errors.Add(new BatchError(BatchInputLine.TooManyLines,
                    $"The input file holds more than {options.MaxLines} requests, the most a batch may hold.", null, reader.Number));
                break;
            }
            if (BatchInputLine.Validate(line, endpoint, checkLine is not null, out string? customId, out string? model) is { } error)
            {
                errors.Add(error with { Line = reader.Number });
            }
            else if (!customIds.Add(CustomIdDigest(customId!)))
            {
                errors.Add(new BatchError(BatchInputLine.DuplicateCustomId,
                    $"The custom_id '{Echo.Safe(customId!)}' is used by an earlier line: each line's custom_id must be unique in the file.", "custom_id", reader.Number));
            }
            else if (checkLine?.Invoke(reader.Number, model!, line) is { } refused)
            {
                errors.Add(refused with { Line = reader.Number });
            }
        }
        if (errors.Count == 0 && total == 0)
        {
            errors.Add(new BatchError(BatchInputLine.EmptyFile, "The input file holds no requests.", "input_file_id", null));
        }
        return new BatchInputCheck(errors, total);
    }

    private static UInt128 CustomIdDigest(string customId)
    {
        Span<byte> digest = stackalloc byte[32];
        int length = System.Text.Encoding.UTF8.GetByteCount(customId);
        byte[]? rented = length > 512 ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> utf8 = rented ?? stackalloc byte[512];
        int written = System.Text.Encoding.UTF8.GetBytes(customId, utf8);
        System.Security.Cryptography.SHA256.HashData(utf8[..written], digest);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest);
    }
}
