using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kernel.Tests;

// A client of QEMU's QMP monitor (docs/interop/qmp-spec.rst) on a unix socket:
// one JSON object per line; commands carry an "id" that their answer echoes;
// events ({"event": ...}) arrive at any time and are kept. The socket may be
// qemu-run.sh --qmp's, which in nested mode is the outer machine's serial port
// that the inner QEMU's monitor sits on: QMP's greeting may have gone out
// before anyone listened, so the client never waits for it.
public sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly Stream _stream;
    private readonly Thread _readerThread;
    private readonly object _lock = new();
    private readonly Dictionary<long, JsonObject> _answers = new();
    private readonly List<JsonObject> _events = new();
    private long _nextId;
    private bool _negotiated;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
        _readerThread = new Thread(ReadLoop) { IsBackground = true, Name = "qmp reader" };
        _readerThread.Start();
    }

    // Connects as soon as the socket exists (QEMU creates it when it starts).
    public static QmpClient Connect(string path, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                return new QmpClient(socket);
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                Thread.Sleep(100);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    public IReadOnlyList<JsonObject> Events
    {
        get { lock (_lock) return _events.ToList(); }
    }

    // Lines that were not JSON (none are expected; kept for failure messages).
    public List<string> Noise { get; } = new();

    private void ReadLoop()
    {
        try
        {
            while (_reader.ReadLine() is string line)
            {
                line = line.Trim();
                if (line.Length == 0) continue;
                JsonObject? o;
                try { o = JsonNode.Parse(line) as JsonObject; }
                catch (JsonException) { lock (_lock) Noise.Add(line); continue; }
                if (o == null) continue;
                lock (_lock)
                {
                    if (o.ContainsKey("event")) _events.Add(o);
                    else if (o["id"] is JsonNode id) _answers[id.GetValue<long>()] = o;
                    Monitor.PulseAll(_lock);
                }
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    // Runs a command; its "return" value, or an exception carrying QMP's error.
    public JsonNode? Execute(string command, JsonObject? arguments = null, TimeSpan? timeout = null)
    {
        if (!_negotiated && command != "qmp_capabilities")
        {
            Execute("qmp_capabilities", null, timeout);
            _negotiated = true;
        }
        long id;
        lock (_lock) id = ++_nextId;
        var request = new JsonObject { ["execute"] = command, ["id"] = id };
        if (arguments != null) request["arguments"] = arguments;
        var bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        _stream.Write(bytes);
        _stream.Flush();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        lock (_lock)
        {
            while (!_answers.ContainsKey(id))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) throw new TimeoutException($"QMP {command}: no answer within {timeout ?? TimeSpan.FromSeconds(30)} (noise: {string.Join(" | ", Noise)})");
                Monitor.Wait(_lock, left);
            }
            var answer = _answers[id];
            _answers.Remove(id);
            if (answer["error"] is JsonObject error)
                throw new InvalidOperationException($"QMP {command}: {error["class"]}: {error["desc"]}");
            return answer["return"];
        }
    }

    // Waits until an event matches, or the timeout; the match, or null.
    public JsonObject? WaitForEvent(Func<JsonObject, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_lock)
        {
            while (true)
            {
                var found = _events.FirstOrDefault(match);
                if (found != null) return found;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return null;
                Monitor.Wait(_lock, left);
            }
        }
    }

    public void Dispose()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        _socket.Dispose();
        _readerThread.Join(TimeSpan.FromSeconds(5));
    }
}
