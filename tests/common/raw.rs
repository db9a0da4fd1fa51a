//! A raw Kafka-protocol client for tests: SASL/PLAIN over plaintext, then typed requests.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawClient {
    stream: TcpStream,
    correlation: i32,
    /// API key → highest version the gateway offers.
    pub versions: BTreeMap<i16, i16>,
}

impl RawClient {
    /// Connects to a SASL_PLAINTEXT gateway and logs in with PLAIN.
    pub async fn login(addr: &str, user: &str, password: &str) -> Self {
        let (c, a) = Self::try_login(addr, user, password).await;
        assert_eq!(a.error_code, 0, "{:?}", a.error_message);
        c
    }

    /// Connects to a SASL_PLAINTEXT gateway and tries PLAIN (handshake v1): the client and
    /// the gateway's SaslAuthenticate answer, which may be a failure.
    pub async fn try_login(
        addr: &str,
        user: &str,
        password: &str,
    ) -> (Self, SaslAuthenticateResponse) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Self {
            stream,
            correlation: 0,
            versions: BTreeMap::new(),
        };
        let v: ApiVersionsResponse = c
            .call(
                ApiKey::ApiVersions,
                3,
                &ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("kgate-test"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            )
            .await;
        c.versions = v
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect();
        let h: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
            )
            .await;
        assert_eq!(h.error_code, 0);
        let token = format!("\0{user}\0{password}");
        let a: SaslAuthenticateResponse = c
            .call(
                ApiKey::SaslAuthenticate,
                1,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
            )
            .await;
        (c, a)
    }

    /// The version to use: `want`, or lower if the gateway offers less.
    pub fn version(&self, api: ApiKey, want: i16) -> i16 {
        self.versions
            .get(&(api as i16))
            .map_or(want, |max| want.min(*max))
    }

    /// Sends a request and decodes its response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.try_call(api, version, req)
            .await
            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"))
    }

    /// Sends a request; `Err` if the connection closed instead of answering, or the answer
    /// does not decode.
    pub async fn try_call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        let mut body = self.call_bytes(api, version, req).await?;
        Resp::decode(&mut body, version).map_err(|e| format!("undecodable response: {e}"))
    }

    /// Sends a request and returns the response body (after its header) undecoded; `Err` only
    /// if the connection closed instead of answering.
    pub async fn call_bytes<Req: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Bytes, String> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode request");
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .await
            .map_err(|e| format!("no response: {e}"))?;
        let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream
            .read_exact(&mut resp)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Bytes::from(resp);
        let hv = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let rh = ResponseHeader::decode(&mut buf, hv).expect("response header");
        assert_eq!(rh.correlation_id, self.correlation, "correlation id echoed");
        Ok(buf)
    }

    /// Sends a request without waiting for its answer (pipelining); returns its correlation id.
    pub async fn send<Req: Encodable>(&mut self, api: ApiKey, version: i16, req: &Req) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode request");
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.expect("send");
        self.correlation
    }

    /// Reads the next response as `api` v`version`: its correlation id and decoded body; `Err`
    /// if the connection closed instead.
    pub async fn receive<Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
    ) -> Result<(i32, Resp), String> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .await
            .map_err(|e| format!("no response: {e}"))?;
        let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream
            .read_exact(&mut resp)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Bytes::from(resp);
        let rh = ResponseHeader::decode(&mut buf, api.response_header_version(version))
            .map_err(|e| e.to_string())?;
        let body = Resp::decode(&mut buf, version).map_err(|e| e.to_string())?;
        Ok((rh.correlation_id, body))
    }
}
