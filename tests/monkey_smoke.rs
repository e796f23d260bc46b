use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn smoke() {
    greenhouse::monkey::patch_all().unwrap();
    let rt = greenhouse::runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let t = Instant::now();
    rt.run(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| greenhouse::thread::spawn(|| std::thread::sleep(Duration::from_millis(300))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    println!("sleep {:?}", t.elapsed());
    rt.run(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let srv = greenhouse::thread::spawn(move || {
            for _ in 0..10 {
                let (mut s, _) = l.accept().unwrap();
                greenhouse::thread::spawn(move || {
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b).unwrap();
                    s.write_all(&b).unwrap();
                });
            }
        });
        let cs: Vec<_> = (0..10)
            .map(|_| {
                greenhouse::thread::spawn(move || {
                    let mut c = std::net::TcpStream::connect(a).unwrap();
                    c.write_all(b"hello").unwrap();
                    let mut b = [0u8; 5];
                    c.read_exact(&mut b).unwrap();
                    assert_eq!(&b, b"hello");
                })
            })
            .collect();
        for c in cs {
            c.join().unwrap();
        }
        srv.join().unwrap();
    });
    println!("net ok");
}
